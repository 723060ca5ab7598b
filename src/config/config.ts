/**
 * Command line and environment → one validated, frozen configuration. This is the
 * only module that reads process.env; flags win over KEYHAVEN_* variables.
 */
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { z } from "zod";
import type { KmsPluginConfig } from "../kmsplugin/server.js";
import type { WebhookConfig } from "../webhook/startWebhook.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const hostPort = z.string().transform((value, ctx) => {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({
      code: "custom",
      message: `expected HOST:PORT, e.g. 127.0.0.1:8080, got '${value}'`,
    });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port };
});

const serveSchema = z
  .object({
    listen: hostPort,
    data: z.string().min(1),
    credentials: z.string().min(1).optional(),
    account: z.string().regex(/^\d{12}$/, "an account id is 12 digits"),
    region: z.string().regex(/^([a-z]+-){2,3}\d+$/, "a region looks like us-east-1"),
    "tls-cert": z.string().min(1).optional(),
    "tls-key": z.string().min(1).optional(),
    "log-level": z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    "audit-log": z.string().min(1).optional(),
    seed: z.string().min(1).optional(),
    "web-identity-jwks": z.string().min(1).optional(),
    "web-identity-issuer": z
      .url("an issuer is a URL, e.g. https://kubernetes.default.svc")
      .optional(),
    "web-identity-audience": z.string().min(1),
    "web-identity-labels": z.enum(["none", "cluster"]),
    kubeconfig: z.string().min(1).optional(),
    "web-identity-jwks-ca": z.string().min(1).optional(),
    "web-identity-jwks-token": z.string().min(1).optional(),
    "web-identity-max-session": z
      .string()
      .regex(/^\d+$/, "a number of seconds")
      .transform(Number)
      .refine((n) => n >= 900 && n <= 43200, "between 900 and 43200 seconds"),
  })
  .refine(
    (c) => (c["web-identity-jwks"] === undefined) === (c["web-identity-issuer"] === undefined),
    { message: "--web-identity-jwks and --web-identity-issuer go together" },
  )
  .refine((c) => (c["tls-cert"] === undefined) === (c["tls-key"] === undefined), {
    message: "--tls-cert and --tls-key go together",
  });

export interface ServeConfig {
  readonly command: "serve";
  readonly listen: { readonly host: string; readonly port: number };
  readonly dataDir: string;
  readonly credentialsFile?: string;
  readonly account: string;
  readonly region: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly logLevel: string;
  /** File for audit lines; stdout (with the logs) when absent. */
  readonly auditLog?: string;
  /** Folder of KmsKey/KmsAlias/KmsGrant YAML applied by the operator's reconcilers (docs/operator.md). */
  readonly seedDir?: string;
  /** kubeconfig for the API server reads of `keyhaven serve` (in-cluster, else KUBECONFIG, when absent). */
  readonly kubeconfig?: string;
  /** STS AssumeRoleWithWebIdentity for ServiceAccount tokens (docs/access-control.md). */
  readonly webIdentity?: {
    /** A JWKS file, or an https URL to fetch it from. */
    readonly jwksFile: string;
    readonly issuer: string;
    readonly audience: string;
    readonly maxSessionSeconds: number;
    /** Where sessions' principal tags get the ServiceAccount's labels from: nowhere, or the API server. */
    readonly serviceAccountLabels: "none" | "cluster";
    /** CA and bearer token file for an https JWKS URL (in-cluster defaults when absent). */
    readonly jwksCaFile?: string;
    readonly jwksTokenFile?: string;
  };
}

export type Config =
  | ServeConfig
  | AgentConfig
  | ControllerConfig
  | KmsPluginConfig
  | { readonly command: "help" | "version"; readonly text?: string };

const SERVE_FLAGS = `keyhaven serve flags (environment variable in brackets):
  --listen HOST:PORT     address to listen on [KEYHAVEN_LISTEN] (default 127.0.0.1:8080)
  --data DIR             data folder: store, root key, generated credentials [KEYHAVEN_DATA] (default ./.keyhaven)
  --credentials FILE     credentials file (YAML) [KEYHAVEN_CREDENTIALS]; without it, DIR/credentials.yaml,
                         created with one admin credential on first start
  --account ID           12-digit account id in ARNs [KEYHAVEN_ACCOUNT] (default 000000000000)
  --region NAME          region served; requests must be signed for it [KEYHAVEN_REGION] (default us-east-1)
  --tls-cert FILE        serve HTTPS with this certificate chain (PEM) [KEYHAVEN_TLS_CERT]
  --tls-key FILE         ... and this private key (PEM) [KEYHAVEN_TLS_KEY]
  --audit-log FILE       append audit lines to FILE instead of stdout [KEYHAVEN_AUDIT_LOG]
  --seed DIR             apply the KmsKey/KmsAlias/KmsGrant YAML in DIR with the operator's
                         reconcilers, no cluster needed [KEYHAVEN_SEED] (docs/operator.md)
  --web-identity-jwks FILE|URL  JWKS of the ServiceAccount token issuer: enables STS
                         AssumeRoleWithWebIdentity [KEYHAVEN_WEB_IDENTITY_JWKS]; an https URL
                         (e.g. https://kubernetes.default.svc/openid/v1/jwks) is fetched and refreshed
  --web-identity-jwks-ca FILE     CA for that URL [KEYHAVEN_WEB_IDENTITY_JWKS_CA] (default: in-cluster CA)
  --web-identity-jwks-token FILE  bearer token for that URL [KEYHAVEN_WEB_IDENTITY_JWKS_TOKEN]
                         (default: the pod's ServiceAccount token)
  --web-identity-issuer URL   the tokens' issuer (iss) [KEYHAVEN_WEB_IDENTITY_ISSUER]
  --web-identity-audience AUD the tokens' audience [KEYHAVEN_WEB_IDENTITY_AUDIENCE] (default keyhaven)
  --web-identity-labels none|cluster  give sessions their ServiceAccount's labels as principal
                         tags, read from the API server [KEYHAVEN_WEB_IDENTITY_LABELS] (default none)
  --kubeconfig FILE      kubeconfig for those reads [KEYHAVEN_KUBECONFIG] (default: in-cluster, else KUBECONFIG)
  --web-identity-max-session SECS  longest session [KEYHAVEN_WEB_IDENTITY_MAX_SESSION] (default 3600)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent [KEYHAVEN_LOG_LEVEL] (default info)
`;

export const USAGE = `Usage: keyhaven <command> [flags]

Commands:
  serve     Run the key service (AWS KMS wire protocol) on an embedded store.
  help      Show this text.
  version   Print the version.
  agent     The init container the webhook injects into pods (see docs/injection.md).
  controller  Reconcile KmsKey/KmsAlias/KmsGrant into the key service, and run the webhook
            (docs/operator.md).
  kms-plugin  Kubernetes KMS v2 plugin: encrypts the cluster's Secrets at rest with a Keyhaven key
            (docs/encryption-at-rest.md).

keyhaven <command> --help prints that command's flags.

${SERVE_FLAGS}`;

export const SERVE_USAGE = `Usage: keyhaven serve [flags]

Runs the key service: the AWS KMS wire protocol (and STS web identity) on an embedded store.

${SERVE_FLAGS}`;

const ENV: Record<string, string> = {
  listen: "KEYHAVEN_LISTEN",
  data: "KEYHAVEN_DATA",
  credentials: "KEYHAVEN_CREDENTIALS",
  account: "KEYHAVEN_ACCOUNT",
  region: "KEYHAVEN_REGION",
  "tls-cert": "KEYHAVEN_TLS_CERT",
  "tls-key": "KEYHAVEN_TLS_KEY",
  "log-level": "KEYHAVEN_LOG_LEVEL",
  "audit-log": "KEYHAVEN_AUDIT_LOG",
  seed: "KEYHAVEN_SEED",
  "web-identity-jwks": "KEYHAVEN_WEB_IDENTITY_JWKS",
  "web-identity-issuer": "KEYHAVEN_WEB_IDENTITY_ISSUER",
  "web-identity-audience": "KEYHAVEN_WEB_IDENTITY_AUDIENCE",
  "web-identity-labels": "KEYHAVEN_WEB_IDENTITY_LABELS",
  kubeconfig: "KEYHAVEN_KUBECONFIG",
  "web-identity-jwks-ca": "KEYHAVEN_WEB_IDENTITY_JWKS_CA",
  "web-identity-jwks-token": "KEYHAVEN_WEB_IDENTITY_JWKS_TOKEN",
  "web-identity-max-session": "KEYHAVEN_WEB_IDENTITY_MAX_SESSION",
};

const DEFAULTS: Record<string, string> = {
  listen: "127.0.0.1:8080",
  data: "./.keyhaven",
  account: "000000000000",
  region: "us-east-1",
  "log-level": "info",
  "web-identity-audience": "keyhaven",
  "web-identity-labels": "none",
  "web-identity-max-session": "3600",
};

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h")
    return { command: "help", text: (rest[0] && COMMAND_USAGE.get(rest[0])) ?? USAGE };
  if (command === "version" || command === "--version") return { command: "version" };
  const usage = COMMAND_USAGE.get(command);
  if (usage === undefined) {
    const guess = closest(command, [...COMMAND_USAGE.keys()]);
    throw new ConfigError(
      `unknown command '${command}'${guess ? `; did you mean '${guess}'?` : ""}\n\n${USAGE}`,
    );
  }
  if (rest.includes("--help") || rest.includes("-h")) return { command: "help", text: usage };
  if (command === "agent") return loadAgentConfig(rest, env);
  if (command === "controller") return loadControllerConfig(rest, env);
  if (command === "kms-plugin") return loadKmsPluginConfig(rest, env);

  const values = parseFlags("serve", rest, Object.keys(ENV));
  const merged: Record<string, string | undefined> = {};
  for (const [flag, variable] of Object.entries(ENV)) {
    const v = values[flag];
    merged[flag] = typeof v === "string" ? v : (env[variable] ?? DEFAULTS[flag]);
  }
  const parsed = serveSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path[0];
    throw new ConfigError(`${flag === undefined ? "" : `--${String(flag)}: `}${issue.message}`);
  }
  const c = parsed.data;
  const config: ServeConfig = {
    command: "serve",
    listen: c.listen,
    dataDir: c.data,
    account: c.account,
    region: c.region,
    logLevel: c["log-level"],
    ...(c.credentials !== undefined && { credentialsFile: c.credentials }),
    ...(c["tls-cert"] !== undefined &&
      c["tls-key"] !== undefined && { tls: { certFile: c["tls-cert"], keyFile: c["tls-key"] } }),
    ...(c["audit-log"] !== undefined && { auditLog: c["audit-log"] }),
    ...(c.seed !== undefined && { seedDir: c.seed }),
    ...(c.kubeconfig !== undefined && { kubeconfig: c.kubeconfig }),
    ...(c["web-identity-jwks"] !== undefined &&
      c["web-identity-issuer"] !== undefined && {
        webIdentity: {
          jwksFile: c["web-identity-jwks"],
          issuer: c["web-identity-issuer"],
          audience: c["web-identity-audience"],
          maxSessionSeconds: c["web-identity-max-session"],
          serviceAccountLabels: c["web-identity-labels"],
          ...(c["web-identity-jwks-ca"] !== undefined && { jwksCaFile: c["web-identity-jwks-ca"] }),
          ...(c["web-identity-jwks-token"] !== undefined && {
            jwksTokenFile: c["web-identity-jwks-token"],
          }),
        },
      }),
  };
  return Object.freeze(config);
}

/** `keyhaven agent` (docs/injection.md); the webhook sets its environment in the pod. */
export interface AgentConfig {
  readonly command: "agent";
  /** Where the files go (the shared memory volume). */
  readonly dir: string;
  /** The JSON plan the webhook wrote (KEYHAVEN_AGENT_PLAN). */
  readonly plan?: string;
  /** Where the workload's encrypted data key is kept between starts. */
  readonly dataKeyStore:
    | { readonly kind: "kubernetes"; readonly namespace?: string }
    | { readonly kind: "directory"; readonly path: string };
  /** 0: run once and exit (init container); else re-run every N seconds (native sidecar). */
  readonly refreshIntervalSeconds: number;
  /** How long transient failures (key service or STS still starting) are retried. */
  readonly timeoutSeconds: number;
}

export const AGENT_USAGE = `Usage: keyhaven agent [flags]

Fetches data keys and decrypts keyhaven:<base64> env values into files (mode 0400).
Credentials, endpoint and region come from the standard AWS_* environment.

  --dir DIR                 output folder [KEYHAVEN_AGENT_DIR] (default /var/run/keyhaven)
  --plan JSON               what to fetch, as the webhook writes it [KEYHAVEN_AGENT_PLAN]
  --data-key-store STORE    'kubernetes' (a Secret in the pod's namespace) or a folder path
                            [KEYHAVEN_AGENT_DATA_KEY_STORE] (default kubernetes)
  --namespace NS            the pod's namespace [POD_NAMESPACE]
  --refresh-interval SECS   keep running and refresh every SECS seconds; 0 = run once
                            [KEYHAVEN_AGENT_REFRESH_INTERVAL] (default 0)
  --timeout SECS            retry transient failures this long [KEYHAVEN_AGENT_TIMEOUT] (default 300)
`;

const AGENT_ENV: Record<string, string> = {
  dir: "KEYHAVEN_AGENT_DIR",
  plan: "KEYHAVEN_AGENT_PLAN",
  "data-key-store": "KEYHAVEN_AGENT_DATA_KEY_STORE",
  namespace: "POD_NAMESPACE",
  "refresh-interval": "KEYHAVEN_AGENT_REFRESH_INTERVAL",
  timeout: "KEYHAVEN_AGENT_TIMEOUT",
};

function loadAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfig {
  const values = parseFlags("agent", argv, Object.keys(AGENT_ENV));
  const get = (flag: string): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env[AGENT_ENV[flag]!] || undefined;
  };
  const seconds = (flag: string, fallback: number): number => {
    const text = get(flag);
    if (text === undefined) return fallback;
    if (!/^\d{1,7}$/.test(text))
      throw new ConfigError(`--${flag}: expected a whole number of seconds, got '${text}'`);
    return Number(text);
  };
  const store = get("data-key-store") ?? "kubernetes";
  const namespace = get("namespace");
  return Object.freeze({
    command: "agent",
    dir: get("dir") ?? "/var/run/keyhaven",
    ...(get("plan") !== undefined && { plan: get("plan")! }),
    dataKeyStore:
      store === "kubernetes"
        ? { kind: "kubernetes" as const, ...(namespace !== undefined && { namespace }) }
        : { kind: "directory" as const, path: store },
    refreshIntervalSeconds: seconds("refresh-interval", 0),
    timeoutSeconds: seconds("timeout", 300),
  });
}

/**
 * The webhook's flags on `keyhaven controller` (docs/injection.md). The controller's
 * parser adds these options and calls `webhookConfigFrom`; names of the environment
 * variables match the Helm chart's controller Deployment.
 */
export const WEBHOOK_ENV: Record<string, string> = {
  "webhook-listen": "KEYHAVEN_WEBHOOK_LISTEN",
  "webhook-host": "KEYHAVEN_WEBHOOK_HOST",
  "webhook-cert-dir": "KEYHAVEN_WEBHOOK_CERT_DIR",
  "webhook-config-name": "KEYHAVEN_WEBHOOK_CONFIG_NAME",
  "webhook-service-name": "KEYHAVEN_WEBHOOK_SERVICE_NAME",
  "webhook-secret-name": "KEYHAVEN_WEBHOOK_SECRET_NAME",
  "webhook-kms-endpoint": "KEYHAVEN_WEBHOOK_KMS_ENDPOINT",
  "webhook-sts-endpoint": "KEYHAVEN_WEBHOOK_STS_ENDPOINT",
  "webhook-role-arn": "KEYHAVEN_WEBHOOK_ROLE_ARN",
  "agent-image": "KEYHAVEN_AGENT_IMAGE",
  "agent-image-pull-policy": "KEYHAVEN_AGENT_IMAGE_PULL_POLICY",
  "token-expiration-seconds": "KEYHAVEN_TOKEN_EXPIRATION_SECONDS",
  "agent-refresh-interval": "KEYHAVEN_AGENT_REFRESH_INTERVAL",
};

export const WEBHOOK_USAGE = `webhook flags of keyhaven controller (environment variable in brackets):
  --webhook-listen HOST:PORT     HTTPS admission server, path /mutate-pods [KEYHAVEN_WEBHOOK_LISTEN] (default 0.0.0.0:9443);
                                 a named HOST is also in the own certificate
  --webhook-host NAMES           more DNS names and IPs for the own certificate, comma-separated, for a webhook
                                 registered by URL [KEYHAVEN_WEBHOOK_HOST] (e.g. 10.0.0.7,webhook.example.com)
  --webhook-cert-dir DIR         serve tls.crt/tls.key from DIR (e.g. cert-manager's) [KEYHAVEN_WEBHOOK_CERT_DIR];
                                 without it: the operator's own CA, rotated, caBundle patched by the leader
  --webhook-config-name NAME     MutatingWebhookConfiguration to keep the caBundle of [KEYHAVEN_WEBHOOK_CONFIG_NAME] (default keyhaven)
  --webhook-service-name NAME    the webhook's Service (certificate DNS names) [KEYHAVEN_WEBHOOK_SERVICE_NAME] (default keyhaven-webhook)
  --webhook-secret-name NAME     Secret for the own CA and certificate [KEYHAVEN_WEBHOOK_SECRET_NAME] (default keyhaven-webhook-tls)
  --webhook-kms-endpoint URL     key service URL injected into pods [KEYHAVEN_WEBHOOK_KMS_ENDPOINT] (default --kms-endpoint)
  --webhook-sts-endpoint URL     STS URL injected into pods [KEYHAVEN_WEBHOOK_STS_ENDPOINT] (default the KMS URL)
  --webhook-role-arn ARN         AWS_ROLE_ARN for pods; {namespace} and {serviceAccount} are substituted
                                 [KEYHAVEN_WEBHOOK_ROLE_ARN] (default arn:aws:iam::<account>:role/{namespace}/{serviceAccount})
  --agent-image IMAGE            image of the injected keyhaven agent [KEYHAVEN_AGENT_IMAGE]
  --agent-image-pull-policy P    its pull policy [KEYHAVEN_AGENT_IMAGE_PULL_POLICY]
  --token-expiration-seconds N   projected token lifetime, 600..86400 [KEYHAVEN_TOKEN_EXPIRATION_SECONDS] (default 3600)
  --agent-refresh-interval N     seconds between refreshes of the agent sidecar [KEYHAVEN_AGENT_REFRESH_INTERVAL] (default 300)
`;

/** A DNS name (RFC 1123 labels; a leading `*.` wildcard as certificates allow). */
const dnsName =
  /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;
const httpUrl = /^https?:\/\/[^\s/]+(\/\S*)?$/;

/**
 * Builds the webhook's configuration from the controller's flags. `get(flag)` returns
 * the flag's value, else its WEBHOOK_ENV variable, else undefined.
 */
export function webhookConfigFrom(
  get: (flag: string) => string | undefined,
  context: {
    readonly namespace: string;
    readonly kmsEndpoint: string;
    readonly region: string;
    readonly account?: string;
    readonly version?: string;
  },
): WebhookConfig {
  const listen = hostPort.safeParse(get("webhook-listen") ?? "0.0.0.0:9443");
  if (!listen.success)
    throw new ConfigError(`--webhook-listen: ${listen.error.issues[0]!.message}`);
  const number = (flag: string, fallback: number, min: number, max: number) => {
    const text = get(flag);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max)
      throw new ConfigError(
        `--${flag}: expected a whole number from ${min} to ${max}, got '${text}'`,
      );
    return n;
  };
  const url = (flag: string, fallback: string) => {
    const value = get(flag) ?? fallback;
    if (!httpUrl.test(value))
      throw new ConfigError(`--${flag}: expected an http(s) URL, got '${value}'`);
    return value;
  };
  const kmsEndpoint = url("webhook-kms-endpoint", context.kmsEndpoint);
  const certDir = get("webhook-cert-dir");
  const hosts = (get("webhook-host") ?? "")
    .split(",")
    .map((h) => h.trim().replace(/^\[|\]$/g, ""))
    .filter((h) => h !== "");
  const badHost = hosts.find((h) => isIP(h) === 0 && !dnsName.test(h));
  if (badHost !== undefined)
    throw new ConfigError(
      `--webhook-host: expected comma-separated DNS names and IP addresses, got '${badHost}'`,
    );
  const pullPolicy = get("agent-image-pull-policy");
  if (pullPolicy !== undefined && !["Always", "IfNotPresent", "Never"].includes(pullPolicy))
    throw new ConfigError(
      `--agent-image-pull-policy: Always, IfNotPresent or Never, got '${pullPolicy}'`,
    );
  return {
    listen: listen.data,
    ...(certDir !== undefined && { certDir }),
    ...(hosts.length > 0 && { hosts }),
    configName: get("webhook-config-name") ?? "keyhaven",
    namespace: context.namespace,
    serviceName: get("webhook-service-name") ?? "keyhaven-webhook",
    secretName: get("webhook-secret-name") ?? "keyhaven-webhook-tls",
    settings: {
      kmsEndpoint,
      stsEndpoint: url("webhook-sts-endpoint", kmsEndpoint),
      region: context.region,
      roleArn:
        get("webhook-role-arn") ??
        `arn:aws:iam::${context.account ?? "000000000000"}:role/{namespace}/{serviceAccount}`,
      agentImage: get("agent-image") ?? `ghcr.io/keyhaven/keyhaven:${context.version ?? "latest"}`,
      ...(pullPolicy !== undefined && { agentImagePullPolicy: pullPolicy }),
      tokenExpirationSeconds: number("token-expiration-seconds", 3600, 600, 86400),
      refreshIntervalSeconds: number("agent-refresh-interval", 300, 10, 86400),
    },
  };
}

/** `keyhaven controller` (docs/operator.md): the operator, plus the webhook (docs/injection.md). */
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
  /** From AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN]; absent → the SDK's default chain. */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** /metrics, /healthz, /readyz. */
  readonly metricsListen: { readonly host: string; readonly port: number };
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

export const CONTROLLER_USAGE = `Usage: keyhaven controller [flags]

Reconciles KmsKey, KmsAlias and KmsGrant (keyhaven.dev/v1alpha1) into the key service,
as an admin principal of the KMS API. Credentials come from the standard AWS_* environment
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or web identity), as every AWS SDK reads them.

  --kubeconfig FILE        kubeconfig [KUBECONFIG]; default: in-cluster service account
  --namespace NS           own namespace, for the leader Lease [POD_NAMESPACE] (default keyhaven-system)
  --watch-namespace NS     only watch NS [KEYHAVEN_WATCH_NAMESPACE] (default all namespaces)
  --kms-endpoint URL       key service URL [AWS_ENDPOINT_URL_KMS] (required)
  --region NAME            [AWS_REGION, AWS_DEFAULT_REGION] (default us-east-1)
  --metrics-listen HOST:PORT  /metrics, /healthz, /readyz [KEYHAVEN_METRICS_LISTEN] (default 0.0.0.0:9090)
  --leader-elect BOOL      compete for the Lease keyhaven-controller [KEYHAVEN_LEADER_ELECT] (default true)
  --leader-elect-lease-duration D  how long a Lease holds without renewal [KEYHAVEN_LEADER_ELECT_LEASE_DURATION] (default 15s)
  --leader-elect-renew-deadline D  a leader that cannot renew for D stops [KEYHAVEN_LEADER_ELECT_RENEW_DEADLINE] (default 10s)
  --leader-elect-retry-period D    how often to try to acquire or renew [KEYHAVEN_LEADER_ELECT_RETRY_PERIOD] (default 2s)
                           (durations: 15s, 1500ms; retry < renew deadline < lease duration)
  --drift-check-interval D compare each object with its key this often [KEYHAVEN_DRIFT_CHECK_INTERVAL] (default 10m)
  --identity NAME          this replica in the Lease [POD_NAME, HOSTNAME]
  --workers N              reconciles in parallel per kind [KEYHAVEN_WORKERS] (default 16)
  --disable-webhook        run the operator only [KEYHAVEN_DISABLE_WEBHOOK=true]
  --log-level LEVEL        [KEYHAVEN_LOG_LEVEL] (default info)
`;

const CONTROLLER_ENV: Record<string, string> = {
  kubeconfig: "KUBECONFIG",
  namespace: "POD_NAMESPACE",
  "watch-namespace": "KEYHAVEN_WATCH_NAMESPACE",
  "kms-endpoint": "AWS_ENDPOINT_URL_KMS",
  region: "AWS_REGION",
  "metrics-listen": "KEYHAVEN_METRICS_LISTEN",
  "leader-elect": "KEYHAVEN_LEADER_ELECT",
  "leader-elect-lease-duration": "KEYHAVEN_LEADER_ELECT_LEASE_DURATION",
  "leader-elect-renew-deadline": "KEYHAVEN_LEADER_ELECT_RENEW_DEADLINE",
  "leader-elect-retry-period": "KEYHAVEN_LEADER_ELECT_RETRY_PERIOD",
  "drift-check-interval": "KEYHAVEN_DRIFT_CHECK_INTERVAL",
  identity: "POD_NAME",
  workers: "KEYHAVEN_WORKERS",
  "disable-webhook": "KEYHAVEN_DISABLE_WEBHOOK",
  "log-level": "KEYHAVEN_LOG_LEVEL",
};

function loadControllerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ControllerConfig {
  const values = parseFlags(
    "controller",
    argv,
    [...Object.keys(CONTROLLER_ENV), ...Object.keys(WEBHOOK_ENV)],
    ["disable-webhook"],
  );
  const get = (flag: string): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    if (v === true) return "true";
    const variable = CONTROLLER_ENV[flag] ?? WEBHOOK_ENV[flag];
    return (variable && env[variable]) || undefined;
  };
  const kmsEndpoint = get("kms-endpoint");
  if (!kmsEndpoint || !httpUrl.test(kmsEndpoint))
    throw new ConfigError(
      `--kms-endpoint: the key service URL is required (or AWS_ENDPOINT_URL_KMS), e.g. http://keyhaven.keyhaven-system:8080; got '${kmsEndpoint ?? ""}'`,
    );
  const region = get("region") ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1";
  if (!/^([a-z]+-){2,3}\d+$/.test(region))
    throw new ConfigError(`--region: a region looks like us-east-1, got '${region}'`);
  const listen = hostPort.safeParse(get("metrics-listen") ?? "0.0.0.0:9090");
  if (!listen.success)
    throw new ConfigError(`--metrics-listen: ${listen.error.issues[0]!.message}`);
  const bool = (flag: string, fallback: boolean) => {
    const v = get(flag);
    if (v === undefined) return fallback;
    if (v !== "true" && v !== "false")
      throw new ConfigError(`--${flag}: true or false, got '${v}'`);
    return v === "true";
  };
  const duration = (flag: string, fallback: string) => {
    const text = get(flag) ?? fallback;
    const m = /^(\d{1,6})(ms|s|m)$/.exec(text);
    if (!m || Number(m[1]) === 0)
      throw new ConfigError(`--${flag}: a duration such as 10m, 15s or 1500ms, got '${text}'`);
    return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as "ms" | "s" | "m"];
  };
  const leaseDurationMs = duration("leader-elect-lease-duration", "15s");
  const renewDeadlineMs = duration("leader-elect-renew-deadline", "10s");
  const retryPeriodMs = duration("leader-elect-retry-period", "2s");
  const driftCheckMs = duration("drift-check-interval", "10m");
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs))
    throw new ConfigError(
      `--leader-elect-*: the retry period (${retryPeriodMs} ms) must be shorter than the renew deadline (${renewDeadlineMs} ms), and that shorter than the lease duration (${leaseDurationMs} ms)`,
    );
  const workersText = get("workers") ?? "16";
  if (!/^\d{1,3}$/.test(workersText) || Number(workersText) < 1)
    throw new ConfigError(`--workers: a number from 1 to 999, got '${workersText}'`);
  const logLevel = get("log-level") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel))
    throw new ConfigError(
      `--log-level: fatal|error|warn|info|debug|trace|silent, got '${logLevel}'`,
    );
  const namespace = get("namespace") ?? "keyhaven-system";
  const accessKeyId = env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"];
  const sessionToken = env["AWS_SESSION_TOKEN"];
  const watchNamespace = get("watch-namespace");
  // --kubeconfig, else in-cluster, else KUBECONFIG (DESIGN.md).
  const flagKubeconfig =
    typeof values["kubeconfig"] === "string" ? values["kubeconfig"] : undefined;
  const kubeconfig =
    flagKubeconfig ?? (env["KUBERNETES_SERVICE_HOST"] ? undefined : env["KUBECONFIG"]);
  const config: ControllerConfig = {
    command: "controller",
    ...(kubeconfig !== undefined && { kubeconfig }),
    namespace,
    ...(watchNamespace !== undefined && { watchNamespace }),
    kmsEndpoint,
    region,
    ...(accessKeyId &&
      secretAccessKey && {
        credentials: { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) },
      }),
    metricsListen: listen.data,
    leaderElection: bool("leader-elect", true),
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    driftCheckMs,
    identity: get("identity") ?? env["HOSTNAME"] ?? `keyhaven-${process.pid}`,
    workers: Number(workersText),
    logLevel,
    ...(!bool("disable-webhook", false) && {
      webhook: webhookConfigFrom(get, { namespace, kmsEndpoint, region }),
    }),
  };
  return Object.freeze(config);
}

export const KMS_PLUGIN_USAGE = `Usage: keyhaven kms-plugin --listen unix:///PATH --key-id KEY [flags]

Serves the Kubernetes KMS v2 API (v2.KeyManagementService) on a Unix socket for the API
server's EncryptionConfiguration, wrapping its DEK seeds with a Keyhaven key
(docs/encryption-at-rest.md). Credentials come from the standard AWS_* environment.

  --listen unix:///PATH       socket to serve on (mode 0600) [KEYHAVEN_KMS_PLUGIN_LISTEN] (required)
  --key-id KEY                symmetric key: id, ARN, alias/NAME or alias ARN [KEYHAVEN_KMS_PLUGIN_KEY_ID] (required)
  --kms-endpoint URL          key service URL [AWS_ENDPOINT_URL_KMS] (required)
  --region NAME               [AWS_REGION, AWS_DEFAULT_REGION] (default us-east-1)
  --cluster-name NAME         encryption context keyhaven:cluster, so that ciphertext from another
                              cluster does not decrypt here [KEYHAVEN_CLUSTER_NAME] (default kubernetes)
  --health-check-interval SECS  Status answers from the last Encrypt/Decrypt round trip this long
                              [KEYHAVEN_KMS_PLUGIN_HEALTH_CHECK_INTERVAL] (default 30)
  --log-level LEVEL           [KEYHAVEN_LOG_LEVEL] (default info)
`;

const KMS_PLUGIN_ENV: Record<string, string> = {
  listen: "KEYHAVEN_KMS_PLUGIN_LISTEN",
  "key-id": "KEYHAVEN_KMS_PLUGIN_KEY_ID",
  "kms-endpoint": "AWS_ENDPOINT_URL_KMS",
  region: "AWS_REGION",
  "cluster-name": "KEYHAVEN_CLUSTER_NAME",
  "health-check-interval": "KEYHAVEN_KMS_PLUGIN_HEALTH_CHECK_INTERVAL",
  "log-level": "KEYHAVEN_LOG_LEVEL",
};

/** `keyhaven kms-plugin` (docs/encryption-at-rest.md). */
function loadKmsPluginConfig(argv: readonly string[], env: NodeJS.ProcessEnv): KmsPluginConfig {
  const values = parseFlags("kms-plugin", argv, Object.keys(KMS_PLUGIN_ENV));
  const get = (flag: string): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env[KMS_PLUGIN_ENV[flag]!] || undefined;
  };
  const listen = get("listen") ?? "";
  const socket = /^unix:\/\/(\/[^\0]+)$/.exec(listen);
  if (!socket)
    throw new ConfigError(
      `--listen: an absolute Unix socket URL is required, e.g. unix:///var/run/kmsplugin/socket.sock; got '${listen}'`,
    );
  const keyId = get("key-id");
  if (!keyId)
    throw new ConfigError(
      "--key-id: the Keyhaven key to wrap DEK seeds with is required (id, ARN or alias/NAME)",
    );
  const kmsEndpoint = get("kms-endpoint");
  if (!kmsEndpoint || !httpUrl.test(kmsEndpoint))
    throw new ConfigError(
      `--kms-endpoint: the key service URL is required (or AWS_ENDPOINT_URL_KMS), e.g. http://127.0.0.1:8080; got '${kmsEndpoint ?? ""}'`,
    );
  const region = get("region") ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1";
  if (!/^([a-z]+-){2,3}\d+$/.test(region))
    throw new ConfigError(`--region: a region looks like us-east-1, got '${region}'`);
  const clusterName = get("cluster-name") ?? "kubernetes";
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(clusterName))
    throw new ConfigError(
      `--cluster-name: letters, digits, '.', '_' and '-' (at most 253), got '${clusterName}'`,
    );
  const interval = get("health-check-interval") ?? "30";
  if (!/^\d{1,5}$/.test(interval) || Number(interval) < 1)
    throw new ConfigError(
      `--health-check-interval: a whole number of seconds from 1 to 99999, got '${interval}'`,
    );
  const logLevel = get("log-level") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel))
    throw new ConfigError(
      `--log-level: fatal|error|warn|info|debug|trace|silent, got '${logLevel}'`,
    );
  return Object.freeze({
    command: "kms-plugin",
    socketPath: socket[1]!,
    keyId,
    kmsEndpoint,
    region,
    clusterName,
    healthCheckIntervalSeconds: Number(interval),
    logLevel,
  });
}

/** Each command's --help text (`keyhaven help <command>` prints it too). */
const COMMAND_USAGE: ReadonlyMap<string, string> = new Map([
  ["serve", SERVE_USAGE],
  ["agent", AGENT_USAGE],
  ["controller", `${CONTROLLER_USAGE}\n${WEBHOOK_USAGE}`],
  ["kms-plugin", KMS_PLUGIN_USAGE],
  ["help", USAGE],
  ["version", "Usage: keyhaven version\n\nPrints the version.\n"],
]);

/**
 * Parses a command's flags (all strings but `booleans`). An unknown flag names the
 * closest valid one; every parse error points at the command's --help.
 */
function parseFlags(
  command: string,
  argv: readonly string[],
  flags: readonly string[],
  booleans: readonly string[] = [],
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        flags.map((k) => [k, { type: booleans.includes(k) ? "boolean" : "string" } as const]),
      ),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    const help = `(keyhaven ${command} --help lists the flags)`;
    const unknown = /^Unknown option '(-{1,2})([^'=]+)'/.exec((err as Error).message);
    if (unknown) {
      const guess = closest(unknown[2]!, flags);
      throw new ConfigError(
        `Unknown option '${unknown[1]}${unknown[2]}' for keyhaven ${command}${guess ? `; did you mean --${guess}?` : ""} ${help}`,
      );
    }
    throw new ConfigError(`${(err as Error).message.split(". ")[0]} ${help}`);
  }
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  // A typo or two, or a prefix of a longer flag (--web-identity for --web-identity-jwks).
  const near = bestDistance <= Math.max(1, Math.floor(word.length / 3));
  const prefix = candidates.filter((c) => c.startsWith(word));
  if (near) return best;
  return prefix.length === 1 ? prefix[0] : undefined;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length]!;
}
