/**
 * Starts the admission webhook inside `keyhaven controller`: the HTTPS server, its
 * certificate source, and the cached namespace-label lookup.
 *
 * Certificates come either from a directory (`--webhook-cert-dir`, e.g. a cert-manager
 * Secret mounted as a volume: `tls.crt`/`tls.key`, re-read when they change) or from
 * the operator's own CA in a Secret (CertificateManager: the leader issues, rotates and
 * patches the caBundle; every replica hot-reloads).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock, type Clock } from "../time.js";
import type { WebhookConfig } from "../config/config.js";
import type { Logger } from "../observability/logger.js";
import { CertificateManager } from "./certificateManager.js";
import type { CertificatePolicy } from "./certificates.js";
import type { WebhookResources } from "./resources.js";
import { MUTATE_PATH, WebhookServer, type ServingCertificate } from "./server.js";

export interface WebhookDependencies {
  readonly resources: WebhookResources;
  readonly isLeader: () => boolean;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Lifetimes of the own CA and serving certificate (default DEFAULT_CERTIFICATE_POLICY). */
  readonly certificatePolicy?: CertificatePolicy;
  /** Stops waiting for the leader's first certificate (shutdown during start-up). */
  readonly signal?: AbortSignal;
}

export interface RunningWebhook {
  readonly url: string;
  readonly server: WebhookServer;
  /** The own-CA certificate manager (absent with --webhook-cert-dir). */
  readonly certificates?: CertificateManager;
  stop(): Promise<void>;
}

/**
 * Namespace labels, cached (the API server only calls us for namespaces the selector
 * matched, so this is a second check, not the gate) and bounded by a short timeout so a
 * slow API server never holds an admission: on timeout the selector is trusted.
 */
export function cachedNamespaceLabels(
  lookup: (name: string) => Promise<Readonly<Record<string, string>> | undefined>,
  options: { ttlMs?: number; timeoutMs?: number; clock?: Clock; logger?: Logger } = {},
): (name: string) => Promise<Record<string, string> | undefined> {
  const ttl = options.ttlMs ?? 30_000;
  const timeout = options.timeoutMs ?? 500;
  const clock = options.clock ?? systemClock;
  const cache = new Map<
    string,
    { at: number; labels: Promise<Record<string, string> | undefined> }
  >();
  return (name) => {
    const now = clock.now().getTime();
    const hit = cache.get(name);
    if (hit && now - hit.at < ttl) return hit.labels;
    const labels = new Promise<Record<string, string> | undefined>((resolve) => {
      const timer = setTimeout(() => {
        options.logger?.warn(
          { namespace: name },
          "namespace lookup timed out; trusting the namespaceSelector",
        );
        cache.delete(name);
        resolve(undefined);
      }, timeout);
      lookup(name).then(
        (l) => {
          clearTimeout(timer);
          resolve(l === undefined ? {} : { ...l });
        },
        (err: unknown) => {
          clearTimeout(timer);
          cache.delete(name);
          options.logger?.warn(
            { namespace: name, err: err instanceof Error ? err.message : String(err) },
            "namespace lookup failed; trusting the namespaceSelector",
          );
          resolve(undefined);
        },
      );
    });
    if (cache.size > 10_000) cache.clear();
    cache.set(name, { at: now, labels });
    return labels;
  };
}

/**
 * What the self-managed serving certificate covers: the Service's DNS names, the
 * `--webhook-listen` address when it names one (not a wildcard such as 0.0.0.0), and
 * every `--webhook-host`, so a webhook registered by URL on any of them verifies.
 */
export function certificateHosts(config: WebhookConfig): string[] {
  const listen = config.listen.host;
  const wildcard = listen === "0.0.0.0" || listen === "::" || listen === "";
  return [
    ...new Set([
      `${config.serviceName}.${config.namespace}.svc`,
      `${config.serviceName}.${config.namespace}.svc.cluster.local`,
      `${config.serviceName}.${config.namespace}`,
      config.serviceName,
      ...(wildcard ? [] : [listen]),
      ...(config.hosts ?? []),
    ]),
  ];
}

function readCertDir(dir: string): ServingCertificate & { text: string } {
  const cert = readFileSync(join(dir, "tls.crt"), "utf8");
  const key = readFileSync(join(dir, "tls.key"), "utf8");
  return { cert, key, text: cert + key };
}

export async function startWebhook(
  config: WebhookConfig,
  deps: WebhookDependencies,
): Promise<RunningWebhook> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger.child({ component: "webhook" });
  const hosts = certificateHosts(config);
  const options = {
    settings: config.settings,
    ownNamespace: config.namespace,
    namespaceLabels: cachedNamespaceLabels((n) => deps.resources.getNamespaceLabels(n), {
      clock,
      logger,
    }),
    logger,
  };

  let server: WebhookServer;
  let stopSource: () => void;
  let certificates: CertificateManager | undefined;
  if (config.certDir) {
    const certDir = config.certDir;
    let current = readCertDir(certDir);
    server = new WebhookServer({ ...options, certificate: current });
    // Mounted Secrets change by an atomic symlink swap; polling the content is the reliable check.
    const timer = setInterval(() => {
      try {
        const next = readCertDir(certDir);
        if (next.text !== current.text) {
          server.setCertificate(next);
          current = next;
          logger.info({ dir: certDir }, "serving certificate reloaded");
        }
      } catch (err) {
        logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "could not re-read the certificate",
        );
      }
    }, 10_000);
    timer.unref();
    stopSource = () => clearInterval(timer);
  } else {
    let initial: ServingCertificate | undefined;
    const live: { server?: WebhookServer } = {};
    const manager = new CertificateManager({
      resources: deps.resources,
      namespace: config.namespace,
      secretName: config.secretName,
      webhookConfigName: config.configName,
      hosts,
      clock,
      ...(deps.certificatePolicy && { policy: deps.certificatePolicy }),
      isLeader: deps.isLeader,
      logger,
      onCertificate: (c) => {
        if (live.server) {
          live.server.setCertificate(c);
          logger.info("serving certificate reloaded");
        } else initial = c;
      },
    });
    // Followers wait for the leader's first certificate (a few seconds at most on install).
    for (let delay = 250; !initial; delay = Math.min(delay * 2, 5000)) {
      if (deps.signal?.aborted) throw new Error("webhook start-up cancelled");
      try {
        await manager.sync();
      } catch (err) {
        logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "certificate check failed; retrying",
        );
      }
      if (!initial) await systemClock.sleep(delay);
    }
    server = new WebhookServer({ ...options, certificate: initial });
    live.server = server;
    manager.start();
    certificates = manager;
    stopSource = () => manager.stop();
  }
  let address;
  try {
    address = await server.listen(config.listen.host, config.listen.port);
  } catch (err) {
    // A busy port: stop the certificate timers so the failed start leaves nothing running.
    stopSource();
    throw err;
  }
  const url = `https://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}${MUTATE_PATH}`;
  logger.info(
    { url, certificates: config.certDir ?? `secret ${config.namespace}/${config.secretName}` },
    "webhook listening",
  );
  return {
    url,
    server,
    ...(certificates && { certificates }),
    async stop() {
      stopSource();
      await server.close();
    },
  };
}
