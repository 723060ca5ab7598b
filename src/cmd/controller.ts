/**
 * `keyhaven controller`: the operator (informers, leader election, reconcilers)
 * plus the admission webhook, a /metrics + /healthz + /readyz listener, and a
 * graceful shutdown. Losing the leader Lease ends the process with status 1 so the
 * Deployment restarts it as a follower (as controller-runtime does). What stops the
 * start (an unreadable kubeconfig, an API server it cannot reach or use, a busy port)
 * is a StartupError: one line and exit status 2, as for `keyhaven serve`.
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { ControllerConfig } from "../config/config.js";
import { checkApiServer, clientNodeCluster } from "../kube/clientNodeCluster.js";
import { loadKubeConfig } from "../kube/kubeConfig.js";
import { webhookResources } from "../kube/webhookResources.js";
import { createLogger } from "../observability/logger.js";
import { listenProbes } from "../observability/probeServer.js";
import { startWebhook, type RunningWebhook } from "../webhook/startWebhook.js";
import { createKmsClient } from "../controller/kms.js";
import { Manager } from "../controller/manager.js";
import { ControllerMetrics } from "../controller/runtime/metrics.js";
import { systemClock } from "../time.js";
import { untilStopped } from "./signals.js";
import { StartupError } from "./startupError.js";

export interface RunningController {
  /** The /metrics, /healthz and /readyz listener. */
  readonly metricsUrl: string;
  readonly manager: Manager;
  /** Resolves when the operator stops: "stopped" (asked to) or "lost" (leader Lease lost). */
  readonly done: Promise<"stopped" | "lost">;
  stop(): Promise<void>;
}

/** `keyhaven controller` as a process: runs until a signal (0) or a lost Lease (1). */
export async function runController(config: ControllerConfig): Promise<number> {
  const running = await startController(config);
  const outcome = await Promise.race([running.done, untilStopped().then(() => "stopped")]);
  await running.stop();
  // A lost Lease: exit non-zero so the replica restarts as a follower.
  return outcome === "lost" ? 1 : 0;
}

export async function startController(
  config: ControllerConfig,
  deps: { logger?: Logger } = {},
): Promise<RunningController> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  let kc;
  try {
    kc = loadKubeConfig(config.kubeconfig);
  } catch (err) {
    throw new StartupError(
      `${config.kubeconfig !== undefined ? `--kubeconfig ${config.kubeconfig}` : "in-cluster configuration or KUBECONFIG"}: ${(err as Error).message.split("\n")[0]} (give a readable kubeconfig with --kubeconfig, or run in a pod with a service account)`,
    );
  }
  const timers = systemClock;
  const metrics = new ControllerMetrics({ defaultMetrics: true });
  const problem = await checkApiServer(
    kc,
    config.watchNamespace !== undefined ? { watchNamespace: config.watchNamespace } : {},
  );
  if (problem) throw new StartupError(problem);
  const cluster = clientNodeCluster(kc, {
    timers,
    ...(config.watchNamespace && { watchNamespace: config.watchNamespace }),
    informer: {
      onError: (err) => {
        metrics.watchErrors.inc({ kind: "all" });
        logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "list/watch failed; retrying with backoff",
        );
      },
    },
  });
  const kms = createKmsClient({
    endpoint: config.kmsEndpoint,
    region: config.region,
    ...(config.credentials && { credentials: config.credentials }),
  });
  const manager = new Manager({
    cluster,
    kms,
    timers,
    logger: logger.child({ component: "operator" }),
    metrics,
    workers: config.workers,
    driftCheckMs: config.driftCheckMs,
    account: config.account,
    leaderElection: config.leaderElection
      ? {
          namespace: config.namespace,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        }
      : false,
  });
  const http = await listenProbes(config.metricsListen, {
    registry: metrics.registry,
    ready: () => manager.synced,
    notReady: "caches not synced",
  }).catch((err: unknown) => {
    kms.destroy();
    throw new StartupError(
      `--metrics-listen: cannot listen on ${config.metricsListen.host}:${config.metricsListen.port}: ${(err as Error).message}`,
    );
  });
  const address = http.address() as AddressInfo;
  const stopSignal = new AbortController();
  const done = manager.run(stopSignal.signal);
  let webhook: RunningWebhook | undefined;
  if (config.webhook) {
    const listenOn = config.webhook.listen;
    try {
      webhook = await startWebhook(config.webhook, {
        resources: webhookResources(kc),
        isLeader: () => manager.isLeader,
        logger,
        signal: stopSignal.signal,
      });
    } catch (err) {
      stopSignal.abort();
      await done;
      await new Promise<void>((resolve) => http.close(() => resolve()));
      kms.destroy();
      throw new StartupError(
        `--webhook-listen: cannot start the webhook on ${listenOn.host}:${listenOn.port}: ${(err as Error).message}`,
      );
    }
  }
  logger.info(
    {
      kmsEndpoint: config.kmsEndpoint,
      namespace: config.namespace,
      identity: config.identity,
      metrics: `http://${address.address}:${address.port}/metrics`,
    },
    "controller started",
  );
  return {
    metricsUrl: `http://${address.address}:${address.port}`,
    manager,
    done,
    async stop() {
      stopSignal.abort();
      await done;
      await webhook?.stop();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      kms.destroy();
      logger.info("controller stopped");
      logger.flush();
    },
  };
}
