/** `keyhaven kms-plugin` (docs/encryption-at-rest.md). */
import { z } from "zod";
import { matching, required, wholeNumber } from "./schemas.js";
import { command, flag } from "./table.js";
import { LOG_LEVEL_FLAG, keyServiceClientFlags } from "./commonFlags.js";

export interface KmsPluginConfig {
  readonly command: "kms-plugin";
  /** Absolute path of the Unix socket (from `--listen unix:///PATH`). */
  readonly socketPath: string;
  readonly keyId: string;
  readonly kmsEndpoint: string;
  readonly region: string;
  readonly clusterName: string;
  readonly healthCheckIntervalSeconds: number;
  readonly logLevel: string;
}

/** `unix:///PATH` → PATH. */
const unixSocket = z.preprocess(
  (v) => v ?? "",
  z.string().transform((value, ctx) => {
    const socket = /^unix:\/\/(\/[^\0]+)$/.exec(value);
    if (!socket) {
      ctx.addIssue({
        code: "custom",
        message: `an absolute Unix socket URL is required, e.g. unix:///var/run/kmsplugin/socket.sock; got '${value}'`,
      });
      return z.NEVER;
    }
    return socket[1]!;
  }),
);

export const KMS_PLUGIN_FLAGS = {
  listen: flag({
    arg: "unix:///PATH",
    env: ["KEYHAVEN_KMS_PLUGIN_LISTEN"],
    schema: unixSocket,
    help: "socket to serve on (mode 0600) (required)",
  }),
  "key-id": flag({
    arg: "KEY",
    env: ["KEYHAVEN_KMS_PLUGIN_KEY_ID"],
    schema: required("the Keyhaven key to wrap DEK seeds with is required (id, ARN or alias/NAME)"),
    help: "symmetric key: id, ARN, alias/NAME or alias ARN (required)",
  }),
  ...keyServiceClientFlags("http://127.0.0.1:8080"),
  "cluster-name": flag({
    arg: "NAME",
    env: ["KEYHAVEN_CLUSTER_NAME"],
    default: "kubernetes",
    schema: matching(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/,
      "letters, digits, '.', '_' and '-' (at most 253)",
    ),
    help: "encryption context keyhaven:cluster, so that ciphertext from another cluster does not decrypt here",
  }),
  "health-check-interval": flag({
    arg: "SECS",
    env: ["KEYHAVEN_KMS_PLUGIN_HEALTH_CHECK_INTERVAL"],
    default: "30",
    schema: wholeNumber(1, 99999, (v) => `a whole number of seconds from 1 to 99999, got '${v}'`),
    help: "Status answers from the last Encrypt/Decrypt round trip this long",
  }),
  "log-level": LOG_LEVEL_FLAG,
};

export const kmsPluginCommand = command({
  name: "kms-plugin",
  synopsis: "--listen unix:///PATH --key-id KEY [flags]",
  summary:
    "Kubernetes KMS v2 plugin: encrypts the cluster's Secrets at rest with a Keyhaven key (docs/encryption-at-rest.md).",
  description: `Serves the Kubernetes KMS v2 API (v2.KeyManagementService) on a Unix socket for the API
server's EncryptionConfiguration, wrapping its DEK seeds with a Keyhaven key
(docs/encryption-at-rest.md). Credentials come from the standard AWS_* environment.`,
  flags: KMS_PLUGIN_FLAGS,
  build: (c): KmsPluginConfig => ({
    command: "kms-plugin",
    socketPath: c.listen,
    keyId: c["key-id"],
    kmsEndpoint: c["kms-endpoint"],
    region: c.region,
    clusterName: c["cluster-name"],
    healthCheckIntervalSeconds: c["health-check-interval"],
    logLevel: c["log-level"],
  }),
});
