import { z } from "zod";
/** `keyhaven controller` (docs/operator.md): the operator, plus the webhook (docs/injection.md). */
import {
  bool,
  duration,
  hostPort,
  nonEmpty,
  optionalText,
  wholeNumber,
  type HostPort,
} from "./schemas.js";
import { command, ConfigError, flag } from "./table.js";
import { LOG_LEVEL_FLAG, keyServiceClientFlags } from "./commonFlags.js";
import { WEBHOOK_FLAGS, webhookConfig, type WebhookConfig } from "./webhook.js";

export interface ControllerConfig {
  readonly command: "controller";
  /** kubeconfig file; absent → the in-cluster service account. */
  readonly kubeconfig?: string;
  /** Its own namespace: the leader Lease (and the webhook's Secret). */
  readonly namespace: string;
  /** Only watch this namespace (default: all). */
  readonly watchNamespace?: string;
  readonly kmsEndpoint: string;
  readonly region: string;
  /** The key service's account id (the ARN of a KmsKey replicaOf's primary). */
  readonly account: string;
  /** From AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN]; absent → the SDK's default chain. */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** /metrics, /healthz, /readyz. */
  readonly metricsListen: HostPort;
  readonly leaderElection: boolean;
  /** Lease timing (client-go's defaults 15 s / 10 s / 2 s); tests and small clusters shorten it. */
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** How often each object is compared with its key when nothing else wakes it (drift). */
  readonly driftCheckMs: number;
  /** This replica's name in the Lease. */
  readonly identity: string;
  readonly workers: number;
  readonly logLevel: string;
  /** Absent with --disable-webhook. */
  readonly webhook?: WebhookConfig;
}

export const CONTROLLER_FLAGS = {
  account: flag({
    arg: "ID",
    env: ["KEYHAVEN_ACCOUNT"],
    default: "000000000000",
    schema: z.string().regex(/^\d{12}$/, "an account id is 12 digits"),
    help: "12-digit account id of the key service (its serve --account); names the primaries of KmsKey replicaOf",
  }),
  // No env entry: KUBECONFIG counts only outside a pod (src/kube/kubeConfig.ts).
  kubeconfig: flag({
    arg: "FILE",
    schema: optionalText,
    help: "kubeconfig (default: the in-cluster service account, else KUBECONFIG)",
  }),
  namespace: flag({
    arg: "NS",
    env: ["POD_NAMESPACE"],
    default: "keyhaven-system",
    schema: nonEmpty,
    help: "own namespace, for the leader Lease",
  }),
  "watch-namespace": flag({
    arg: "NS",
    env: ["KEYHAVEN_WATCH_NAMESPACE"],
    schema: optionalText,
    help: "only watch NS (default: all namespaces)",
  }),
  ...keyServiceClientFlags("http://keyhaven.keyhaven-system:8080"),
  "metrics-listen": flag({
    arg: "HOST:PORT",
    env: ["KEYHAVEN_METRICS_LISTEN"],
    default: "0.0.0.0:9090",
    schema: hostPort,
    help: "/metrics, /healthz, /readyz",
  }),
  "leader-elect": flag({
    arg: "BOOL",
    env: ["KEYHAVEN_LEADER_ELECT"],
    default: "true",
    schema: bool,
    help: "compete for the Lease keyhaven-controller",
  }),
  "leader-elect-lease-duration": flag({
    arg: "D",
    env: ["KEYHAVEN_LEADER_ELECT_LEASE_DURATION"],
    default: "15s",
    schema: duration,
    help: "how long a Lease holds without renewal",
  }),
  "leader-elect-renew-deadline": flag({
    arg: "D",
    env: ["KEYHAVEN_LEADER_ELECT_RENEW_DEADLINE"],
    default: "10s",
    schema: duration,
    help: "a leader that cannot renew for D stops",
  }),
  "leader-elect-retry-period": flag({
    arg: "D",
    env: ["KEYHAVEN_LEADER_ELECT_RETRY_PERIOD"],
    default: "2s",
    schema: duration,
    help: "how often to try to acquire or renew (durations: 15s, 1500ms; retry < renew deadline < lease duration)",
  }),
  "drift-check-interval": flag({
    arg: "D",
    env: ["KEYHAVEN_DRIFT_CHECK_INTERVAL"],
    default: "10m",
    schema: duration,
    help: "compare each object with its key this often",
  }),
  identity: flag({
    arg: "NAME",
    env: ["POD_NAME", "HOSTNAME"],
    schema: optionalText,
    help: "this replica in the Lease (default: keyhaven-<pid>)",
  }),
  workers: flag({
    arg: "N",
    env: ["KEYHAVEN_WORKERS"],
    default: "16",
    schema: wholeNumber(1, 999, (v) => `a number from 1 to 999, got '${v}'`),
    help: "reconciles in parallel per kind",
  }),
  "disable-webhook": flag({
    env: ["KEYHAVEN_DISABLE_WEBHOOK"],
    default: "false",
    schema: bool,
    help: "run the operator only",
  }),
  "log-level": LOG_LEVEL_FLAG,
};

export const controllerCommand = command({
  name: "controller",
  summary:
    "Reconcile KmsKey/KmsAlias/KmsGrant into the key service, and run the webhook (docs/operator.md).",
  description: `Reconciles KmsKey, KmsAlias and KmsGrant (keyhaven.dev/v1alpha1) into the key service,
as an admin principal of the KMS API. Credentials come from the standard AWS_* environment
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or web identity), as every AWS SDK reads them.`,
  flags: { ...CONTROLLER_FLAGS, ...WEBHOOK_FLAGS },
  sections: [
    ["Flags (environment variables in brackets):", CONTROLLER_FLAGS],
    ["Webhook flags (docs/injection.md):", WEBHOOK_FLAGS],
  ],
  build(c, env): ControllerConfig {
    const lease = c["leader-elect-lease-duration"];
    const renew = c["leader-elect-renew-deadline"];
    const retry = c["leader-elect-retry-period"];
    if (!(retry < renew && renew < lease))
      throw new ConfigError(
        `--leader-elect-*: the retry period (${retry} ms) must be shorter than the renew deadline (${renew} ms), and that shorter than the lease duration (${lease} ms)`,
      );
    // Only the flag: the rest of the rule (in-cluster, KUBECONFIG, ~/.kube/config) is
    // src/kube/kubeConfig.ts, the same for every command.
    const kubeconfig = c.kubeconfig;
    const accessKeyId = env["AWS_ACCESS_KEY_ID"];
    const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"];
    const sessionToken = env["AWS_SESSION_TOKEN"];
    const watchNamespace = c["watch-namespace"];
    return {
      command: "controller",
      ...(kubeconfig !== undefined && { kubeconfig }),
      namespace: c.namespace,
      ...(watchNamespace !== undefined && { watchNamespace }),
      kmsEndpoint: c["kms-endpoint"],
      region: c.region,
      account: c.account,
      ...(accessKeyId &&
        secretAccessKey && {
          credentials: { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) },
        }),
      metricsListen: c["metrics-listen"],
      leaderElection: c["leader-elect"],
      leaseDurationMs: lease,
      renewDeadlineMs: renew,
      retryPeriodMs: retry,
      driftCheckMs: c["drift-check-interval"],
      identity: c.identity ?? `keyhaven-${process.pid}`,
      workers: c.workers,
      logLevel: c["log-level"],
      ...(!c["disable-webhook"] && {
        webhook: webhookConfig(c, {
          namespace: c.namespace,
          kmsEndpoint: c["kms-endpoint"],
          region: c.region,
        }),
      }),
    };
  },
});
