/**
 * `keyhaven serve --seed DIR`: GitOps without a cluster. The KmsKey, KmsAlias and
 * KmsGrant manifests in DIR are loaded into an in-memory API server (validated and
 * defaulted by the same CRD schemas as in a cluster) and reconciled into the key
 * service by the operator's own reconcilers, through the KMS API like any client.
 * Object UIDs are derived from kind/namespace/name, so a restart adopts the keys,
 * aliases and grants made before instead of creating new ones. Seeding only
 * applies: removing a file does not delete its key.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { parseAllDocuments } from "yaml";
import { findCondition } from "../api/v1alpha1/conditions.js";
import { API_VERSION, KINDS, type KindName, type KubeObject } from "../api/v1alpha1/types.js";
import { KubeApiError } from "../kube/cluster.js";
import { EmbeddedApiServer } from "../kube/embedded/apiServer.js";
import { embeddedCluster } from "../kube/embedded/cluster.js";
import { createKmsClient } from "./kms.js";
import { Manager } from "./manager.js";
import { systemClock, type Clock } from "../time.js";

export class SeedError extends Error {
  override name = "SeedError";
}

export interface SeedOptions {
  readonly dir: string;
  /** The key service to seed (its own URL). */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly logger?: Logger;
  readonly timers?: Clock;
  /** How long to wait for every object to report Ready (or why not). */
  readonly waitMs?: number;
}

export interface SeedOutcome {
  readonly kind: KindName;
  readonly namespace: string;
  readonly name: string;
  readonly ready: boolean;
  readonly reason: string;
  readonly message: string;
}

export interface RunningSeed {
  readonly api: EmbeddedApiServer;
  readonly outcomes: readonly SeedOutcome[];
  stop(): Promise<void>;
}

interface Manifest {
  readonly file: string;
  readonly kind: KindName;
  readonly namespace: string;
  readonly body: Record<string, unknown>;
}

/** Reads every *.yaml / *.yml in dir (multi-document files too); other kinds are skipped. */
export function readSeedDir(dir: string, logger?: Logger): Manifest[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    throw new SeedError(`--seed ${dir}: ${(err as Error).message}`);
  }
  const manifests: Manifest[] = [];
  for (const file of files) {
    const path = join(dir, file);
    for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
      if (doc.errors.length > 0) throw new SeedError(`${path}: ${doc.errors[0]!.message}`);
      const body = doc.toJSON() as Record<string, unknown> | null;
      if (!body) continue;
      const kind = body["kind"];
      // A KmsSecret becomes a Secret: there is none without a cluster.
      if (
        body["apiVersion"] !== API_VERSION ||
        typeof kind !== "string" ||
        !(kind in KINDS) ||
        kind === "KmsSecret"
      ) {
        logger?.warn(
          { file: path, apiVersion: body["apiVersion"], kind },
          "skipping a document that is not a keyhaven.dev/v1alpha1 KmsKey, KmsAlias or KmsGrant",
        );
        continue;
      }
      const meta = (body["metadata"] ?? {}) as { namespace?: string; name?: string };
      if (!meta.name) throw new SeedError(`${path}: a ${kind} needs metadata.name`);
      manifests.push({
        file: path,
        kind: kind as KindName,
        namespace: meta.namespace ?? "default",
        body,
      });
    }
  }
  return manifests;
}

/** A stable UID per object, shaped like Kubernetes' (a UUID). */
export function seedUid(plural: string, namespace: string, name: string): string {
  const h = createHash("sha256")
    .update(`keyhaven-seed/${plural}/${namespace}/${name}`)
    .digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export async function startSeed(options: SeedOptions): Promise<RunningSeed> {
  const timers = options.timers ?? systemClock;
  const logger = options.logger?.child({ component: "seed" });
  const manifests = readSeedDir(options.dir, logger);
  const api = new EmbeddedApiServer({ clock: timers, uid: seedUid });
  for (const m of manifests) {
    try {
      api.create(KINDS[m.kind].plural, m.namespace, m.body);
    } catch (err) {
      if (err instanceof KubeApiError) throw new SeedError(`${m.file}: ${err.message}`);
      throw err;
    }
  }
  const kms = createKmsClient({
    endpoint: options.endpoint,
    region: options.region,
    credentials: options.credentials,
  });
  const manager = new Manager({
    cluster: embeddedCluster(api, { timers }),
    kms,
    timers,
    leaderElection: false,
    workers: 4,
    ...(logger && { logger }),
  });
  const stop = new AbortController();
  const running = manager.run(stop.signal);
  const outcomes = await settle(api, manifests, timers, options.waitMs ?? 30_000);
  for (const o of outcomes)
    (o.ready ? logger?.info.bind(logger) : logger?.warn.bind(logger))?.(
      { kind: o.kind, namespace: o.namespace, name: o.name, reason: o.reason },
      o.ready ? `seeded: ${o.message}` : `not ready: ${o.message}`,
    );
  return {
    api,
    outcomes,
    async stop() {
      stop.abort();
      await running;
      kms.destroy();
    },
  };
}

/**
 * Waits until every seeded object reports Ready for its current generation (True or
 * False), re-checking on each change the API server reports; gives up after waitMs
 * with the outcomes as they are.
 */
function settle(
  api: EmbeddedApiServer,
  manifests: readonly Manifest[],
  timers: Clock,
  waitMs: number,
): Promise<SeedOutcome[]> {
  return new Promise((resolve) => {
    const stops: (() => void)[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      for (const stop of stops) stop();
      resolve(observe(api, manifests).outcomes);
    };
    // After the write that woke us, not inside it.
    const check = () =>
      queueMicrotask(() => {
        if (!done && observe(api, manifests).pending === 0) finish();
      });
    for (const kind of new Set(manifests.map((m) => m.kind)))
      stops.push(api.watch(KINDS[kind].plural, "", check));
    stops.push(timers.setTimer(waitMs, finish));
    check();
  });
}

function observe(
  api: EmbeddedApiServer,
  manifests: readonly Manifest[],
): { outcomes: SeedOutcome[]; pending: number } {
  const outcomes: SeedOutcome[] = [];
  let pending = 0;
  for (const m of manifests) {
    const name = (m.body["metadata"] as { name: string }).name;
    const obj = api.get(KINDS[m.kind].plural, m.namespace, name) as unknown as KubeObject<
      unknown,
      { conditions?: never[] }
    >;
    const ready = findCondition(obj.status?.conditions, "Ready");
    const current = ready !== undefined && ready.observedGeneration === obj.metadata.generation;
    const waiting = !current || (ready.status !== "True" && /NotReady$/.test(ready.reason));
    if (waiting) pending++;
    outcomes.push({
      kind: m.kind,
      namespace: m.namespace,
      name,
      ready: ready?.status === "True",
      reason: ready?.reason ?? "Pending",
      message: ready?.message ?? "not reconciled yet",
    });
  }
  return { outcomes, pending };
}
