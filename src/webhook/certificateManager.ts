/**
 * Keeps the webhook's certificates alive without a restart, in the style of
 * cert-manager: `sync()` is level-triggered and safe to run at any time on any replica.
 *
 * - The leader (Lease-elected by the controller) reads the certificate Secret, asks the
 *   pure `reconcileCertificates(current, now)` what to do, writes new certificates with
 *   an optimistic-concurrency replace (a 409 means another writer won: re-read next
 *   time), and sets the caBundle of the MutatingWebhookConfiguration when it differs.
 *   The CA lives in the Secret, so a new leader keeps the same CA — no replicas fighting
 *   over caBundle with different CAs.
 * - Every replica loads the serving certificate from the Secret and hands it to the
 *   server when it changed (hot reload through `setSecureContext`).
 *
 * Time comes from the injected clock; `start()` schedules the next `sync()` at the
 * earlier of the renewal date and a periodic re-check.
 */
import { systemClock, type Clock } from "../time.js";
import type { Logger } from "../observability/logger.js";
import {
  DEFAULT_CERTIFICATE_POLICY,
  nextRenewal,
  reconcileCertificates,
  type CertificatePolicy,
  type WebhookCertificates,
} from "./certificates.js";
import { ResourceConflict, type StoredSecret, type WebhookResources } from "./resources.js";

/** Secret keys: the `kubernetes.io/tls` names plus the CA's own key. */
export const SECRET_KEYS = {
  caBundle: "ca-bundle.crt",
  caCert: "ca.crt",
  caKey: "ca.key",
  tlsCert: "tls.crt",
  tlsKey: "tls.key",
} as const satisfies Record<keyof WebhookCertificates, string>;

export interface CertificateManagerOptions {
  readonly resources: WebhookResources;
  readonly namespace: string;
  readonly secretName: string;
  readonly webhookConfigName: string;
  /** DNS names and IP addresses the serving certificate covers. */
  readonly hosts: readonly string[];
  readonly clock: Clock;
  /**
   * Where start() arms its re-check; the system clock by default, so tests that call
   * sync() themselves on a fake clock get no second, concurrent sync.
   */
  readonly timers?: Clock;
  /** Whether this replica holds the controller's Lease right now. */
  readonly isLeader: () => boolean;
  /** Called with the serving certificate whenever the one in the Secret changes. */
  readonly onCertificate: (certificate: { cert: string; key: string }) => void;
  readonly policy?: CertificatePolicy;
  readonly logger?: Logger;
  /** Longest wait between two checks (default 1 minute). */
  readonly recheckMs?: number;
}

export interface SyncResult {
  readonly issued: boolean;
  readonly caBundlePatched: boolean;
  readonly loaded: boolean;
  /** When the next check is due. */
  readonly nextCheck: Date;
}

function toCertificates(secret: StoredSecret | undefined): WebhookCertificates | undefined {
  if (!secret) return undefined;
  const get = (k: keyof WebhookCertificates) => secret.data[SECRET_KEYS[k]];
  const c = {
    caBundle: get("caBundle"),
    caCert: get("caCert"),
    caKey: get("caKey"),
    tlsCert: get("tlsCert"),
    tlsKey: get("tlsKey"),
  };
  return Object.values(c).every((v) => typeof v === "string" && v.length > 0)
    ? (c as WebhookCertificates)
    : undefined;
}

function toData(c: WebhookCertificates): Record<string, string> {
  return Object.fromEntries(
    (Object.keys(SECRET_KEYS) as (keyof WebhookCertificates)[]).map((k) => [SECRET_KEYS[k], c[k]]),
  );
}

export class CertificateManager {
  readonly #o: CertificateManagerOptions;
  readonly #policy: CertificatePolicy;
  #loadedCert: string | undefined;
  #cancelTimer: (() => void) | undefined;
  #stopped = false;

  constructor(options: CertificateManagerOptions) {
    this.#o = options;
    this.#policy = options.policy ?? DEFAULT_CERTIFICATE_POLICY;
  }

  /** The certificates as stored now (undefined before the leader first issued them). */
  async current(): Promise<WebhookCertificates | undefined> {
    return toCertificates(await this.#o.resources.getSecret(this.#o.namespace, this.#o.secretName));
  }

  async sync(): Promise<SyncResult> {
    const o = this.#o;
    const now = o.clock.now();
    let secret = await o.resources.getSecret(o.namespace, o.secretName);
    let certificates = toCertificates(secret);
    let issued = false;
    let caBundlePatched = false;

    if (o.isLeader()) {
      const decision = reconcileCertificates(certificates, now, o.hosts, this.#policy);
      if (decision.action === "issue") {
        try {
          await o.resources.putSecret(
            o.namespace,
            o.secretName,
            toData(decision.certificates),
            secret?.resourceVersion,
          );
          o.logger?.info(
            { secret: `${o.namespace}/${o.secretName}`, reason: decision.reason },
            "issued webhook certificates",
          );
          issued = true;
          certificates = decision.certificates;
        } catch (err) {
          if (!(err instanceof ResourceConflict)) throw err;
          // Another writer won; use what it wrote.
          secret = await o.resources.getSecret(o.namespace, o.secretName);
          certificates = toCertificates(secret);
        }
      }
      if (certificates) {
        const bundles = await o.resources.getCaBundles(o.webhookConfigName);
        if (bundles === undefined) {
          o.logger?.warn(
            { name: o.webhookConfigName },
            "MutatingWebhookConfiguration not found; caBundle not set",
          );
        } else if (bundles.length > 0 && bundles.some((b) => b !== certificates!.caBundle)) {
          await o.resources.setCaBundle(o.webhookConfigName, certificates.caBundle);
          caBundlePatched = true;
          o.logger?.info({ name: o.webhookConfigName }, "caBundle updated");
        }
      }
    }

    let loaded = false;
    if (certificates && certificates.tlsCert !== this.#loadedCert) {
      o.onCertificate({ cert: certificates.tlsCert, key: certificates.tlsKey });
      this.#loadedCert = certificates.tlsCert;
      loaded = true;
    }
    const recheck = now.getTime() + (o.recheckMs ?? 60_000);
    const renewal = certificates ? nextRenewal(certificates, this.#policy).getTime() : recheck;
    return {
      issued,
      caBundlePatched,
      loaded,
      nextCheck: new Date(Math.min(recheck, Math.max(renewal, now.getTime()))),
    };
  }

  /** Runs `sync()` now and then whenever it is next due; errors are logged and retried. */
  start(): void {
    const run = async () => {
      let delay: number;
      try {
        const r = await this.sync();
        delay = Math.max(1000, r.nextCheck.getTime() - this.#o.clock.now().getTime());
      } catch (err) {
        this.#o.logger?.warn(
          { err: err instanceof Error ? { name: err.name, message: err.message } : String(err) },
          "webhook certificate check failed; retrying",
        );
        delay = 5000;
      }
      if (!this.#stopped) {
        this.#cancelTimer = (this.#o.timers ?? systemClock).setTimer(delay, () => void run());
      }
    };
    void run();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelTimer?.();
  }
}
