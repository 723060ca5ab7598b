/**
 * `keyhaven seal` and `keyhaven reseal` (docs/gitops-secrets.md): Secret manifest →
 * KmsSecret, and a KmsSecret re-encrypted under its key's current material. They call
 * the key service (any AWS KMS endpoint) with the caller's own AWS credentials, which
 * the AWS SDK reads from the standard AWS_* environment and files.
 */
import { z } from "zod";
import { REGION_FLAG } from "./commonFlags.js";
import { httpUrl, nonEmpty, optionalText } from "./schemas.js";
import { command, ConfigError, flag } from "./table.js";

export const SEAL_SCOPES = ["strict", "namespace-wide", "cluster-wide"] as const;

interface KeyServiceClientSettings {
  /** Absent: the SDK's own (AWS_ENDPOINT_URL_KMS, or AWS KMS of the region). */
  readonly kmsEndpoint?: string;
  readonly region: string;
}

export interface SealConfig extends KeyServiceClientSettings {
  readonly command: "seal";
  readonly key?: string;
  readonly keyRef?: string;
  readonly scope?: (typeof SEAL_SCOPES)[number];
  readonly publicKeyFile?: string;
  readonly mergeInto?: string;
  readonly namespace?: string;
  readonly name?: string;
}

export interface ResealConfig extends KeyServiceClientSettings {
  readonly command: "reseal";
  readonly key?: string;
  readonly file?: string;
}

const CLIENT_FLAGS = {
  "kms-endpoint": flag({
    arg: "URL",
    env: ["AWS_ENDPOINT_URL_KMS"],
    schema: httpUrl.optional(),
    help: "key service URL (default: AWS KMS of --region)",
  }),
  region: REGION_FLAG,
};

const keyFlag = (help: string) => flag({ arg: "KEY", schema: optionalText, help });

export const SEAL_FLAGS = {
  key: keyFlag(
    "key id, ARN or alias to seal under (written as spec.keyId); with --merge-into, default the file's",
  ),
  "key-ref": flag({
    arg: "NAME",
    schema: optionalText,
    help: "write spec.keyRef (a KmsKey in the namespace) instead of spec.keyId; --key still names the key",
  }),
  scope: flag({
    arg: "SCOPE",
    schema: z.enum(SEAL_SCOPES, { error: "strict, namespace-wide or cluster-wide" }).optional(),
    help: "strict|namespace-wide|cluster-wide: where the values open (default strict; with --merge-into, the file's)",
  }),
  "public-key": flag({
    arg: "FILE",
    schema: optionalText,
    help: "seal offline with this RSA public key (DER from GetPublicKey, or PEM): no key service call",
  }),
  "merge-into": flag({
    arg: "FILE",
    schema: optionalText,
    help: "add or replace the entries in this KmsSecret file (in place) instead of writing a new one",
  }),
  namespace: flag({
    arg: "NS",
    schema: optionalText,
    help: "namespace of the KmsSecret (default: the Secret's metadata.namespace)",
  }),
  name: flag({
    arg: "NAME",
    schema: optionalText,
    help: "name of the KmsSecret and its Secret (default: the Secret's metadata.name)",
  }),
  ...CLIENT_FLAGS,
};

const client = (c: { "kms-endpoint": string | undefined; region: string }) => ({
  region: c.region,
  ...(c["kms-endpoint"] !== undefined && { kmsEndpoint: c["kms-endpoint"] }),
});

export const sealCommand = command({
  name: "seal",
  summary: "Secret manifest on stdin → KmsSecret sealed under a key (docs/gitops-secrets.md).",
  synopsis: "--key KEY [--public-key FILE] [--scope SCOPE] [--merge-into FILE] [flags]",
  description: `Reads a Secret manifest (YAML or JSON) on stdin and writes a KmsSecret on stdout whose
values only the KmsSecret's controller opens, in its namespace, name and entry (the scope).
Online, each value is a KMS Encrypt under --key with the caller's AWS credentials (the standard
AWS_* environment); with --public-key, offline, sealed with RSA-OAEP over a fresh data key.
  kubectl create secret generic db --from-literal=password=... --dry-run=client -o yaml \\
    | keyhaven seal --key alias/team-a/secrets > db.kmssecret.yaml`,
  flags: SEAL_FLAGS,
  build(c): SealConfig {
    if (c.key === undefined && c["merge-into"] === undefined)
      throw new ConfigError("--key: the key to seal under is required (or --merge-into FILE)");
    return {
      command: "seal",
      ...client(c),
      ...(c.key !== undefined && { key: c.key }),
      ...(c["key-ref"] !== undefined && { keyRef: c["key-ref"] }),
      ...(c.scope !== undefined && { scope: c.scope }),
      ...(c["public-key"] !== undefined && { publicKeyFile: c["public-key"] }),
      ...(c["merge-into"] !== undefined && { mergeInto: c["merge-into"] }),
      ...(c.namespace !== undefined && { namespace: c.namespace }),
      ...(c.name !== undefined && { name: c.name }),
    };
  },
});

export const RESEAL_FLAGS = {
  key: keyFlag("re-encrypt under this key instead (default: the key of each value)"),
  file: flag({
    arg: "FILE",
    schema: nonEmpty.optional(),
    help: "reseal this KmsSecret file in place (default: stdin to stdout)",
  }),
  ...CLIENT_FLAGS,
};

export const resealCommand = command({
  name: "reseal",
  summary: "Re-encrypt a KmsSecret under its key's current material (ReEncrypt; no plaintext out).",
  description: `Reads a KmsSecret (stdin, or --file) and re-encrypts every online value with KMS ReEncrypt, under
the key's current material after a rotation (or under --key), with the same encryption context:
no plaintext leaves the key service. Offline values (RSA keys do not rotate) are kept as they are.`,
  flags: RESEAL_FLAGS,
  build(c): ResealConfig {
    return {
      command: "reseal",
      ...client(c),
      ...(c.key !== undefined && { key: c.key }),
      ...(c.file !== undefined && { file: c.file }),
    };
  },
});
