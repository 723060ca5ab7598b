/**
 * The webhook's flags on `keyhaven controller` (docs/injection.md); names of the
 * environment variables match the Helm chart's controller Deployment.
 */
import { z } from "zod";
import {
  hostList,
  hostPort,
  httpUrl,
  nonEmpty,
  optionalText,
  wholeNumber,
  type HostPort,
} from "./schemas.js";
import { flag, type Values } from "./table.js";

/** Settings the operator gives the webhook for the pods it injects. */
export interface InjectionSettings {
  readonly kmsEndpoint: string;
  readonly stsEndpoint: string;
  readonly region: string;
  /** Role ARN for the pod; `{namespace}` and `{serviceAccount}` are substituted. */
  readonly roleArn: string;
  readonly agentImage: string;
  readonly agentImagePullPolicy?: string;
  /** Projected token lifetime (Kubernetes' minimum is 600 s). */
  readonly tokenExpirationSeconds: number;
  /** Interval of the refresh sidecar. */
  readonly refreshIntervalSeconds: number;
}

export interface WebhookConfig {
  readonly listen: HostPort;
  /** Use tls.crt/tls.key from here (cert-manager) instead of the operator's own CA. */
  readonly certDir?: string;
  /** The MutatingWebhookConfiguration whose caBundle the leader keeps current. */
  readonly configName: string;
  /** The operator's namespace: never injected; holds the certificate Secret. */
  readonly namespace: string;
  /** The webhook Service's name (DNS names of the serving certificate). */
  readonly serviceName: string;
  /**
   * More DNS names and IP addresses for the serving certificate (`--webhook-host`), for a
   * webhook registered by URL (`clientConfig.url`) rather than through the Service.
   */
  readonly hosts?: readonly string[];
  /** Secret holding the operator's CA and serving certificate. */
  readonly secretName: string;
  readonly settings: InjectionSettings;
}

const range = (min: number, max: number) =>
  wholeNumber(min, max, (v) => `expected a whole number from ${min} to ${max}, got '${v}'`);

export const WEBHOOK_FLAGS = {
  "webhook-listen": flag({
    arg: "HOST:PORT",
    env: ["KEYHAVEN_WEBHOOK_LISTEN"],
    default: "0.0.0.0:9443",
    schema: hostPort,
    help: "HTTPS admission server, path /mutate-pods; a named HOST is also in the own certificate",
  }),
  "webhook-host": flag({
    arg: "NAMES",
    env: ["KEYHAVEN_WEBHOOK_HOST"],
    schema: hostList,
    help: "more DNS names and IPs for the own certificate, comma-separated, for a webhook registered by URL (e.g. 10.0.0.7,webhook.example.com)",
  }),
  "webhook-cert-dir": flag({
    arg: "DIR",
    env: ["KEYHAVEN_WEBHOOK_CERT_DIR"],
    schema: optionalText,
    help: "serve tls.crt/tls.key from DIR (e.g. cert-manager's); without it: the operator's own CA, rotated, caBundle patched by the leader",
  }),
  "webhook-config-name": flag({
    arg: "NAME",
    env: ["KEYHAVEN_WEBHOOK_CONFIG_NAME"],
    default: "keyhaven",
    schema: nonEmpty,
    help: "MutatingWebhookConfiguration to keep the caBundle of",
  }),
  "webhook-service-name": flag({
    arg: "NAME",
    env: ["KEYHAVEN_WEBHOOK_SERVICE_NAME"],
    default: "keyhaven-webhook",
    schema: nonEmpty,
    help: "the webhook's Service (certificate DNS names)",
  }),
  "webhook-secret-name": flag({
    arg: "NAME",
    env: ["KEYHAVEN_WEBHOOK_SECRET_NAME"],
    default: "keyhaven-webhook-tls",
    schema: nonEmpty,
    help: "Secret for the own CA and certificate",
  }),
  "webhook-kms-endpoint": flag({
    arg: "URL",
    env: ["KEYHAVEN_WEBHOOK_KMS_ENDPOINT"],
    schema: httpUrl.optional(),
    help: "key service URL injected into pods (default: --kms-endpoint)",
  }),
  "webhook-sts-endpoint": flag({
    arg: "URL",
    env: ["KEYHAVEN_WEBHOOK_STS_ENDPOINT"],
    schema: httpUrl.optional(),
    help: "STS URL injected into pods (default: the KMS URL)",
  }),
  "webhook-role-arn": flag({
    arg: "ARN",
    env: ["KEYHAVEN_WEBHOOK_ROLE_ARN"],
    schema: optionalText,
    help: "AWS_ROLE_ARN for pods; {namespace} and {serviceAccount} are substituted (default: arn:aws:iam::<account>:role/{namespace}/{serviceAccount})",
  }),
  "agent-image": flag({
    arg: "IMAGE",
    env: ["KEYHAVEN_AGENT_IMAGE"],
    schema: optionalText,
    help: "image of the injected keyhaven agent (default: ghcr.io/keyhaven/keyhaven:<version>)",
  }),
  "agent-image-pull-policy": flag({
    arg: "POLICY",
    env: ["KEYHAVEN_AGENT_IMAGE_PULL_POLICY"],
    schema: z
      .enum(["Always", "IfNotPresent", "Never"], {
        error: (issue) => `Always, IfNotPresent or Never, got '${String(issue.input)}'`,
      })
      .optional(),
    help: "its pull policy",
  }),
  "token-expiration-seconds": flag({
    arg: "N",
    env: ["KEYHAVEN_TOKEN_EXPIRATION_SECONDS"],
    default: "3600",
    schema: range(600, 86400),
    help: "projected token lifetime, 600..86400",
  }),
  "agent-refresh-interval": flag({
    arg: "N",
    env: ["KEYHAVEN_AGENT_REFRESH_INTERVAL"],
    default: "300",
    schema: range(10, 86400),
    help: "seconds between refreshes of the agent sidecar",
  }),
};

/** What the webhook's defaults depend on: the controller's own flags. */
export interface WebhookContext {
  readonly namespace: string;
  readonly kmsEndpoint: string;
  readonly region: string;
  readonly account?: string;
  readonly version?: string;
}

/** The webhook's configuration from its flags' values. */
export function webhookConfig(
  v: Values<typeof WEBHOOK_FLAGS>,
  context: WebhookContext,
): WebhookConfig {
  const kmsEndpoint = v["webhook-kms-endpoint"] ?? context.kmsEndpoint;
  const pullPolicy = v["agent-image-pull-policy"];
  return {
    listen: v["webhook-listen"],
    ...(v["webhook-cert-dir"] !== undefined && { certDir: v["webhook-cert-dir"] }),
    ...(v["webhook-host"].length > 0 && { hosts: v["webhook-host"] }),
    configName: v["webhook-config-name"],
    namespace: context.namespace,
    serviceName: v["webhook-service-name"],
    secretName: v["webhook-secret-name"],
    settings: {
      kmsEndpoint,
      stsEndpoint: v["webhook-sts-endpoint"] ?? kmsEndpoint,
      region: context.region,
      roleArn:
        v["webhook-role-arn"] ??
        `arn:aws:iam::${context.account ?? "000000000000"}:role/{namespace}/{serviceAccount}`,
      agentImage: v["agent-image"] ?? `ghcr.io/keyhaven/keyhaven:${context.version ?? "latest"}`,
      ...(pullPolicy !== undefined && { agentImagePullPolicy: pullPolicy }),
      tokenExpirationSeconds: v["token-expiration-seconds"],
      refreshIntervalSeconds: v["agent-refresh-interval"],
    },
  };
}
