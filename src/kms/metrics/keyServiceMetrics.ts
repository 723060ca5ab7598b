/**
 * Prometheus metrics of the key service (prom-client), on a registry of its own, served
 * at GET /metrics (docs/observability.md). Labels stay low-cardinality: operation names
 * come from the dispatch table (anything else is "Unknown"), outcomes are "ok" or an AWS
 * exception name, and no label ever carries a key id, alias or principal.
 *
 * The per-request path is one counter increment and one histogram observation on label
 * children created up front; the gauges (keys, audit, root key) are read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { randomBytes } from "node:crypto";
import type { RootKey } from "../rootkey/rootKey.js";
import type { KeyCount } from "../store/keyStore.js";

/** What the audit pipeline reports about itself (serve.ts: its SyncDestination). */
export interface AuditStats {
  /** Audit bytes accepted but not yet written to their destination. */
  readonly backlogBytes: number;
  /** Failed writes since start (each refused the request it recorded). */
  readonly writeFailures: number;
}

export interface KeyServiceMetricsSources {
  /** Operation names served (the dispatch table's keys); others are counted as "Unknown". */
  readonly operations: readonly string[];
  /** Keys by state and spec; called once per scrape, so it must be cheap (an index scan). */
  readonly countKeys?: () => Promise<readonly KeyCount[]>;
  readonly auditStats?: () => AuditStats;
  /** Resolves true when the root key wraps and unwraps; called once per scrape. */
  readonly rootKeyHealthy?: () => Promise<boolean>;
  readonly defaultMetrics?: boolean;
}

const LIFECYCLE_ACTIONS = ["RotateKey", "ExpireKeyMaterial", "DeleteKey"] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

const UNKNOWN = "Unknown";
const OK = "ok";
const STS_ACTIONS = ["AssumeRoleWithWebIdentity", "GetCallerIdentity"];

interface OperationSeries {
  readonly label: string;
  readonly ok: Counter.Internal;
  readonly duration: Histogram.Internal<"operation">;
  /** Error outcomes seen so far (a bounded set: the AWS exception names). */
  readonly errors: Map<string, Counter.Internal>;
}

export class KeyServiceMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<"operation" | "outcome">;
  readonly #series = new Map<string, OperationSeries>();
  readonly #sts: Counter<"action" | "outcome">;
  readonly #lifecycle: Counter<"action">;
  readonly #lifecycleFailures: Counter;

  constructor(sources: KeyServiceMetricsSources) {
    this.registry = new Registry();
    if (sources.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.#requests = new Counter({
      name: "keyhaven_kms_requests_total",
      help: 'KMS API requests by operation and outcome ("ok" or the AWS exception name).',
      labelNames: ["operation", "outcome"],
      registers,
    });
    const duration = new Histogram({
      name: "keyhaven_kms_request_duration_seconds",
      help: "Time from the request's arrival to its answer, by operation.",
      labelNames: ["operation"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    // Every operation's series exist from the start (at zero), so rate() and ratios work
    // before the first call, and the children skip the label lookup on each request.
    for (const operation of [...sources.operations, UNKNOWN]) {
      const ok = this.#requests.labels(operation, OK);
      ok.inc(0);
      duration.zero({ operation });
      this.#series.set(operation, {
        label: operation,
        ok,
        duration: duration.labels(operation),
        errors: new Map(),
      });
    }
    this.#sts = new Counter({
      name: "keyhaven_sts_requests_total",
      help: 'STS requests by action and outcome ("ok" or the STS error code).',
      labelNames: ["action", "outcome"],
      registers,
    });
    this.#lifecycle = new Counter({
      name: "keyhaven_kms_lifecycle_actions_total",
      help: "Automatic rotations, material expiries and deletions performed by the lifecycle loop.",
      labelNames: ["action"],
      registers,
    });
    for (const action of LIFECYCLE_ACTIONS) this.#lifecycle.labels(action).inc(0);
    this.#lifecycleFailures = new Counter({
      name: "keyhaven_kms_lifecycle_failures_total",
      help: "Lifecycle actions that failed (retried at the next check).",
      registers,
    });

    const { countKeys, auditStats, rootKeyHealthy } = sources;
    if (countKeys) {
      new Gauge({
        name: "keyhaven_kms_keys",
        help: "Keys in the store by key state and key spec.",
        labelNames: ["state", "key_spec"],
        registers,
        async collect() {
          const counts = await countKeys();
          this.reset();
          for (const c of counts) this.set({ state: c.state, key_spec: c.keySpec }, c.count);
        },
      });
    }
    if (auditStats) {
      new Gauge({
        name: "keyhaven_kms_audit_backlog_bytes",
        help: "Audit bytes accepted but not yet written.",
        registers,
        collect() {
          this.set(auditStats().backlogBytes);
        },
      });
      let reported = 0;
      new Counter({
        name: "keyhaven_kms_audit_write_failures_total",
        help: "Failed audit writes (audit lines may be lost: alert on any).",
        registers,
        collect() {
          const failures = auditStats().writeFailures;
          if (failures > reported) this.inc(failures - reported);
          reported = Math.max(reported, failures);
        },
      });
    }
    if (rootKeyHealthy) {
      new Gauge({
        name: "keyhaven_kms_root_key_up",
        help: "1 when the root key wrapped and unwrapped a probe at the last scrape, else 0.",
        registers,
        async collect() {
          this.set((await rootKeyHealthy().catch(() => false)) ? 1 : 0);
        },
      });
    }
  }

  /** One KMS request: `operation` is what the caller asked for (untrusted), `error` its exception name. */
  request(operation: string | undefined, error: string | undefined, seconds: number): void {
    const series =
      (operation !== undefined && this.#series.get(operation)) || this.#series.get(UNKNOWN)!;
    series.duration.observe(seconds);
    if (error === undefined) {
      series.ok.inc();
      return;
    }
    let counter = series.errors.get(error);
    if (!counter) {
      counter = this.#requests.labels(series.label, error);
      series.errors.set(error, counter);
    }
    counter.inc();
  }

  /** One STS request; actions other than the two served are counted as "Unknown". */
  sts(action: string, error: string | undefined): void {
    this.#sts.inc({
      action: STS_ACTIONS.includes(action) ? action : UNKNOWN,
      outcome: error ?? OK,
    });
  }

  lifecycleAction(action: LifecycleAction): void {
    this.#lifecycle.inc({ action });
  }

  lifecycleFailure(): void {
    this.#lifecycleFailures.inc();
  }

  /** The exposition text and its content type, for GET /metrics. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Root-key health: a random probe wrapped and unwrapped (an HSM round trip for pkcs11). */
export function rootKeyProbe(rootKey: RootKey): () => Promise<boolean> {
  const context = "keyhaven:metrics-probe";
  return async () => {
    const probe = randomBytes(32);
    const unwrapped = await rootKey.unwrap(await rootKey.wrap(probe, context), context);
    return unwrapped.equals(probe);
  };
}
