/** `keyhaven serve`: the key service's flags and configuration. */
import { z } from "zod";
import {
  duration,
  hostPort,
  nonEmpty,
  optionalText,
  region,
  wholeNumber,
  xksProxyPrefix,
  type HostPort,
} from "./schemas.js";
import { PKCS11_FLAGS, rootKeySettings, type RootKeySettings } from "./rootKey.js";
import { command, ConfigError, flag } from "./table.js";
import { LOG_LEVEL_FLAG } from "./commonFlags.js";

export interface ServeConfig {
  readonly command: "serve";
  readonly listen: HostPort;
  readonly dataDir: string;
  readonly credentialsFile?: string;
  readonly account: string;
  /** The first Region of `regions` (the one the store in DIR/keyhaven.db belongs to). */
  readonly region: string;
  /** Every Region this process serves (`--region A,B`); each request's signing Region picks one. */
  readonly regions: readonly string[];
  /** Other Keyhaven instances by Region, for multi-Region keys (docs/multi-region.md). */
  readonly peers: ReadonlyMap<string, string>;
  /** Access key id (of the credentials file) that signs calls to peers; the first credential when absent. */
  readonly peerCredential?: string;
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
  /** What wraps key material: a local key in the data folder, or a key in an HSM (docs/hsm.md). */
  readonly rootKey: RootKeySettings;
  /**
   * Serve the XKS Proxy API under this path prefix ("/tenant-a": requests go to
   * /tenant-a/kms/xks/v1/...); absent = no XKS proxy (docs/external-key-stores.md).
   */
  readonly xksProxyPrefix?: string;
  /** Where keys live: DIR/keyhaven.db, or Secrets in a namespace several replicas share (docs/high-availability.md). */
  readonly store: StoreSettings;
  /** Keyhaven as an XKS client: EXTERNAL_KEY_STORE custom key stores (docs/external-key-stores.md). */
  readonly xksClient: {
    /** How long each call to an XKS proxy may take. */
    readonly timeoutMs: number;
    /** PEM file of CA certificates trusted for proxies besides Node's public ones. */
    readonly caFile?: string;
  };
  /** The PKCS#11 module of AWS_CLOUDHSM custom key stores' tokens (--pkcs11-module), if any. */
  readonly pkcs11Module: string | undefined;
  /**
   * Processes serving the listener (node:cluster, docs/architecture.md "Workers"); absent =
   * the CPUs this process may use (cgroup cpu.max, else os.availableParallelism()); 1 = no cluster.
   */
  readonly workers?: number;
}

export type StoreSettings =
  { readonly type: "sqlite" } | { readonly type: "kubernetes"; readonly namespace: string };

export const SERVE_FLAGS = {
  listen: flag({
    arg: "HOST:PORT",
    env: ["KEYHAVEN_LISTEN"],
    default: "127.0.0.1:8080",
    schema: hostPort,
    help: "address to listen on",
  }),
  data: flag({
    arg: "DIR",
    env: ["KEYHAVEN_DATA"],
    default: "./.keyhaven",
    schema: nonEmpty,
    help: "data folder: store, root key, generated credentials",
  }),
  credentials: flag({
    arg: "FILE",
    env: ["KEYHAVEN_CREDENTIALS"],
    schema: optionalText,
    help: "credentials file (YAML); without it, DIR/credentials.yaml, created with one admin credential on first start",
  }),
  account: flag({
    arg: "ID",
    env: ["KEYHAVEN_ACCOUNT"],
    default: "000000000000",
    schema: z.string().regex(/^\d{12}$/, "an account id is 12 digits"),
    help: "12-digit account id in ARNs",
  }),
  region: flag({
    arg: "NAME[,NAME...]",
    env: ["KEYHAVEN_REGION"],
    default: "us-east-1",
    schema: z
      .string()
      .transform((text) => text.split(",").map((r) => r.trim()))
      .pipe(z.array(region).min(1))
      .refine((list) => new Set(list).size === list.length, "a Region is listed twice"),
    help: "Region(s) served; each request's signing Region picks one (several: docs/multi-region.md)",
  }),
  peer: flag({
    arg: "REGION=URL",
    env: ["KEYHAVEN_PEERS"],
    repeatable: true,
    schema: z
      .string()
      .optional()
      .transform((text, c) => {
        const peers = new Map<string, string>();
        for (const entry of text === undefined || text === "" ? [] : text.split(",")) {
          const m = /^([a-z]+(?:-[a-z]+){1,2}-\d+)=(https?:\/\/[^\s]+)$/.exec(entry.trim());
          if (!m || peers.has(m[1]!)) {
            c.addIssue({
              code: "custom",
              message: `'${entry}' is not REGION=URL (e.g. eu-west-1=https://keyhaven.eu.example:8080), or its Region is listed twice`,
            });
            return z.NEVER;
          }
          peers.set(m[1]!, m[2]!.replace(/\/+$/, ""));
        }
        return peers;
      }),
    help: "another Keyhaven instance serving REGION, for multi-Region keys; repeatable (docs/multi-region.md)",
  }),
  "peer-credential": flag({
    arg: "ACCESS_KEY_ID",
    env: ["KEYHAVEN_PEER_CREDENTIAL"],
    schema: optionalText,
    help: "credential (from the credentials file) that signs calls to peers; default: the first (the admin)",
  }),
  "tls-cert": flag({
    arg: "FILE",
    env: ["KEYHAVEN_TLS_CERT"],
    schema: optionalText,
    help: "serve HTTPS with this certificate chain (PEM)",
  }),
  "tls-key": flag({
    arg: "FILE",
    env: ["KEYHAVEN_TLS_KEY"],
    schema: optionalText,
    help: "... and this private key (PEM)",
  }),
  "audit-log": flag({
    arg: "FILE",
    env: ["KEYHAVEN_AUDIT_LOG"],
    schema: optionalText,
    help: "append audit lines to FILE instead of stdout",
  }),
  seed: flag({
    arg: "DIR",
    env: ["KEYHAVEN_SEED"],
    schema: optionalText,
    help: "apply the KmsKey/KmsAlias/KmsGrant YAML in DIR with the operator's reconcilers, no cluster needed (docs/operator.md)",
  }),
  "web-identity-jwks": flag({
    arg: "FILE|URL",
    env: ["KEYHAVEN_WEB_IDENTITY_JWKS"],
    schema: optionalText,
    help: "JWKS of the ServiceAccount token issuer: enables STS AssumeRoleWithWebIdentity; an https URL (e.g. https://kubernetes.default.svc/openid/v1/jwks) is fetched and refreshed",
  }),
  "web-identity-jwks-ca": flag({
    arg: "FILE",
    env: ["KEYHAVEN_WEB_IDENTITY_JWKS_CA"],
    schema: optionalText,
    help: "CA for that URL (default: the in-cluster CA)",
  }),
  "web-identity-jwks-token": flag({
    arg: "FILE",
    env: ["KEYHAVEN_WEB_IDENTITY_JWKS_TOKEN"],
    schema: optionalText,
    help: "bearer token for that URL (default: the pod's ServiceAccount token)",
  }),
  "web-identity-issuer": flag({
    arg: "URL",
    env: ["KEYHAVEN_WEB_IDENTITY_ISSUER"],
    schema: z.url("an issuer is a URL, e.g. https://kubernetes.default.svc").optional(),
    help: "the tokens' issuer (iss)",
  }),
  "web-identity-audience": flag({
    arg: "AUD",
    env: ["KEYHAVEN_WEB_IDENTITY_AUDIENCE"],
    default: "keyhaven",
    schema: nonEmpty,
    help: "the tokens' audience",
  }),
  "web-identity-labels": flag({
    arg: "none|cluster",
    env: ["KEYHAVEN_WEB_IDENTITY_LABELS"],
    default: "none",
    schema: z.enum(["none", "cluster"]),
    help: "give sessions their ServiceAccount's labels as principal tags, read from the API server",
  }),
  kubeconfig: flag({
    arg: "FILE",
    env: ["KEYHAVEN_KUBECONFIG"],
    schema: optionalText,
    help: "kubeconfig for the API server reads (ServiceAccount labels, the kubernetes store) (default: in-cluster, else KUBECONFIG)",
  }),
  "web-identity-max-session": flag({
    arg: "SECS",
    env: ["KEYHAVEN_WEB_IDENTITY_MAX_SESSION"],
    default: "3600",
    schema: z
      .string()
      .regex(/^\d+$/, "a number of seconds")
      .transform(Number)
      .refine((n) => n >= 900 && n <= 43200, "between 900 and 43200 seconds"),
    help: "longest session",
  }),
  "log-level": LOG_LEVEL_FLAG,
  "root-key": flag({
    arg: "local|pkcs11",
    env: ["KEYHAVEN_ROOT_KEY"],
    default: "local",
    schema: z.enum(["local", "pkcs11"]),
    help: "what wraps key material: DIR/root.key, or an AES key in an HSM (docs/hsm.md)",
  }),
  ...PKCS11_FLAGS,
  "xks-proxy-uri-path": flag({
    arg: "/PREFIX",
    env: ["KEYHAVEN_XKS_PROXY_URI_PATH"],
    schema: xksProxyPrefix.optional(),
    help: "serve AWS's XKS Proxy API (GetHealthStatus, GetKeyMetadata, Encrypt, Decrypt) on the same listener at /PREFIX/kms/xks/v1, for AWS KMS external key stores; callers sign for kms-xks-proxy with a credential of 20-30 / 43-64 characters (docs/external-key-stores.md)",
  }),
  "xks-client-timeout": flag({
    arg: "DURATION",
    env: ["KEYHAVEN_XKS_CLIENT_TIMEOUT"],
    default: "2s",
    schema: duration,
    help: "how long Keyhaven, as the client of an external key store's XKS proxy, waits for each call before it answers the KMS caller with AWS's timeout errors (e.g. 1500ms, 5s)",
  }),
  "xks-client-ca": flag({
    arg: "FILE",
    env: ["KEYHAVEN_XKS_CLIENT_CA"],
    schema: optionalText,
    help: "PEM CA certificates trusted for external key stores' XKS proxies, besides the public ones",
  }),
  store: flag({
    arg: "sqlite|kubernetes",
    env: ["KEYHAVEN_STORE"],
    default: "sqlite",
    schema: z.enum(["sqlite", "kubernetes"]),
    help: "where keys live: DIR/keyhaven.db, or Secrets in --store-namespace that several replicas share (docs/high-availability.md)",
  }),
  "store-namespace": flag({
    arg: "NS",
    env: ["KEYHAVEN_STORE_NAMESPACE"],
    schema: optionalText,
    help: "namespace of the kubernetes store (API server from --kubeconfig, in-cluster, else KUBECONFIG)",
  }),
  workers: flag({
    arg: "N",
    env: ["KEYHAVEN_WORKERS"],
    schema: wholeNumber(1, 256, (v) => `a number from 1 to 256, got '${v}'`).optional(),
    help: "processes sharing the listener, one event loop each; 1 = a single process, no cluster (default: the CPUs this process may use: the cgroup's cpu.max quota, else all)",
  }),
};

/** Flags that go together: both or neither. */
const PAIRS = [
  ["web-identity-jwks", "web-identity-issuer"],
  ["tls-cert", "tls-key"],
] as const;

function storeSettings(type: "sqlite" | "kubernetes", namespace?: string): StoreSettings {
  if (type === "sqlite") {
    if (namespace !== undefined)
      throw new ConfigError("--store-namespace goes with --store kubernetes");
    return { type };
  }
  if (namespace === undefined)
    throw new ConfigError("--store kubernetes needs --store-namespace NS");
  return { type, namespace };
}

/** Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}

export const serveCommand = command({
  name: "serve",
  summary: "Run the key service (AWS KMS wire protocol) on an embedded store.",
  description:
    "Runs the key service: the AWS KMS wire protocol (and STS web identity) on an embedded store.",
  flags: SERVE_FLAGS,
  build(c, env): ServeConfig {
    for (const [a, b] of PAIRS)
      if ((c[a] === undefined) !== (c[b] === undefined))
        throw new ConfigError(`--${a} and --${b} go together`);
    for (const served of c.region)
      if (c.peer.has(served))
        throw new ConfigError(`--peer ${served}: this process serves ${served} itself (--region)`);
    for (const [peerRegion, url] of c.peer)
      if (new URL(url).protocol === "http:" && !isLoopbackUrl(url))
        throw new ConfigError(
          `--peer ${peerRegion}=${url}: a peer over plain HTTP could be impersonated on the network; serve that instance over HTTPS (--tls-cert, --tls-key) and give its https:// URL (http:// only on loopback: 127.0.0.1, [::1], localhost)`,
        );
    return {
      command: "serve",
      listen: c.listen,
      dataDir: c.data,
      account: c.account,
      region: c.region[0]!,
      regions: c.region,
      peers: c.peer,
      ...(c["peer-credential"] !== undefined && { peerCredential: c["peer-credential"] }),
      logLevel: c["log-level"],
      ...(c.credentials !== undefined && { credentialsFile: c.credentials }),
      ...(c["tls-cert"] !== undefined &&
        c["tls-key"] !== undefined && { tls: { certFile: c["tls-cert"], keyFile: c["tls-key"] } }),
      ...(c["audit-log"] !== undefined && { auditLog: c["audit-log"] }),
      ...(c.seed !== undefined && { seedDir: c.seed }),
      ...(c.kubeconfig !== undefined && { kubeconfig: c.kubeconfig }),
      rootKey: rootKeySettings(c["root-key"], c, env, "--root-key"),
      ...(c["xks-proxy-uri-path"] !== undefined && { xksProxyPrefix: c["xks-proxy-uri-path"] }),
      store: storeSettings(c.store, c["store-namespace"]),
      pkcs11Module: c["pkcs11-module"],
      xksClient: {
        timeoutMs: c["xks-client-timeout"],
        ...(c["xks-client-ca"] !== undefined && { caFile: c["xks-client-ca"] }),
      },
      ...(c.workers !== undefined && { workers: c.workers }),
      ...(c["web-identity-jwks"] !== undefined &&
        c["web-identity-issuer"] !== undefined && {
          webIdentity: {
            jwksFile: c["web-identity-jwks"],
            issuer: c["web-identity-issuer"],
            audience: c["web-identity-audience"],
            maxSessionSeconds: c["web-identity-max-session"],
            serviceAccountLabels: c["web-identity-labels"],
            ...(c["web-identity-jwks-ca"] !== undefined && {
              jwksCaFile: c["web-identity-jwks-ca"],
            }),
            ...(c["web-identity-jwks-token"] !== undefined && {
              jwksTokenFile: c["web-identity-jwks-token"],
            }),
          },
        }),
    };
  },
});
