/**
 * `keyhaven seal` and `keyhaven reseal` (docs/gitops-secrets.md). seal: a Secret
 * manifest → a KmsSecret whose values are bound to their place by the encryption
 * context of src/sealing/sealedValue.ts, online (KMS Encrypt with the caller's AWS
 * credentials) or offline (an RSA public key from GetPublicKey). reseal: every online
 * value through KMS ReEncrypt with the same context, so no plaintext leaves the key
 * service. Errors name entries and keys, never a value.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { EncryptCommand, KMSClient, ReEncryptCommand } from "@aws-sdk/client-kms";
import { parse, stringify } from "yaml";
import { API_VERSION, type KmsSecret, type SealingScope } from "../api/v1alpha1/types.js";
import type { ResealConfig, SealConfig } from "../config/config.js";
import { createKmsClient, errorMessage } from "../controller/kms.js";
import {
  parseEnvelope,
  readPublicKey,
  sealingContext,
  sealOffline,
  SealedValueError,
  type Scope,
} from "../sealing/sealedValue.js";
import { StartupError } from "./startupError.js";

type KmsSecretManifest = Pick<KmsSecret, "apiVersion" | "kind" | "spec"> & {
  metadata: { name: string; namespace?: string };
};

export interface SealIo {
  readonly stdin: () => Promise<string>;
  readonly stdout: (text: string) => void;
  /** The KMS client (tests pass one; else one from the config and the AWS_* environment). */
  readonly kms?: KMSClient;
}

const processIo: SealIo = {
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  },
  stdout: (text) => process.stdout.write(text),
};

const record = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;

function stringMap(v: unknown, what: string): Record<string, string> {
  const r = record(v ?? {});
  if (!r || !Object.values(r).every((x) => typeof x === "string"))
    throw new StartupError(`${what} must be a map of strings`);
  return r as Record<string, string>;
}

function parseDocument(text: string, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new StartupError(`${what} is not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  const r = record(doc);
  if (!r) throw new StartupError(`${what} is not a manifest (an object)`);
  return r;
}

/** The Secret's entries as bytes (stringData wins over data, as the API server does). */
function secretEntries(secret: Record<string, unknown>): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(stringMap(secret["data"], "the Secret's data")))
    entries.set(k, Buffer.from(v, "base64"));
  for (const [k, v] of Object.entries(stringMap(secret["stringData"], "the Secret's stringData")))
    entries.set(k, Buffer.from(v, "utf8"));
  if (entries.size === 0) throw new StartupError("the Secret has no data or stringData");
  return entries;
}

function readKmsSecret(text: string, what: string): KmsSecretManifest {
  const doc = parseDocument(text, what);
  const meta = record(doc["metadata"]);
  const spec = record(doc["spec"]);
  if (doc["apiVersion"] !== API_VERSION || doc["kind"] !== "KmsSecret" || !meta || !spec)
    throw new StartupError(`${what} is not a ${API_VERSION} KmsSecret`);
  if (typeof meta["name"] !== "string") throw new StartupError(`${what} has no metadata.name`);
  stringMap(spec["encryptedData"], `${what}: spec.encryptedData`);
  return doc as unknown as KmsSecretManifest;
}

const kmsFor = (config: SealConfig | ResealConfig, io: SealIo) =>
  io.kms ??
  (config.kmsEndpoint
    ? createKmsClient({ endpoint: config.kmsEndpoint, region: config.region })
    : new KMSClient({ region: config.region }));

/** Seals each entry for `target`; the manifest gets the sealed values in place. */
async function sealEntries(
  out: KmsSecretManifest,
  entries: Map<string, Buffer>,
  key: string,
  publicKeyFile: string | undefined,
  kms: () => KMSClient,
): Promise<void> {
  const scope = out.spec.scope ?? "strict";
  const publicKey = publicKeyFile && readPublicKey(readFile(publicKeyFile, "--public-key"));
  const sealed: Record<string, string> = { ...out.spec.encryptedData };
  for (const [entry, plaintext] of entries) {
    const context = sealingContext(scope, {
      namespace: out.metadata.namespace ?? "",
      name: out.metadata.name,
      entry,
    });
    try {
      if (publicKey) {
        sealed[entry] = sealOffline(publicKey, context, plaintext).toString("base64");
      } else {
        const res = await kms().send(
          new EncryptCommand({ KeyId: key, Plaintext: plaintext, EncryptionContext: context }),
        );
        sealed[entry] = Buffer.from(res.CiphertextBlob!).toString("base64");
      }
    } catch (err) {
      if (err instanceof SealedValueError) throw new StartupError(`entry ${entry}: ${err.message}`);
      throw new StartupError(`entry ${entry}: Encrypt under ${key}: ${errorMessage(err)}`);
    } finally {
      plaintext.fill(0);
    }
  }
  out.spec.encryptedData = Object.fromEntries(
    Object.keys(sealed)
      .sort()
      .map((k) => [k, sealed[k]!]),
  );
}

function readFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StartupError(
      `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`,
    );
  }
}

const yamlOf = (obj: unknown) => stringify(obj, { lineWidth: 0 });

/** A new KmsSecret for the Secret manifest `input`. */
function newKmsSecret(config: SealConfig, secret: Record<string, unknown>): KmsSecretManifest {
  if (secret["kind"] !== "Secret" || secret["apiVersion"] !== "v1")
    throw new StartupError("stdin is not a v1 Secret manifest");
  const meta = record(secret["metadata"]) ?? {};
  const name = config.name ?? (typeof meta["name"] === "string" ? meta["name"] : undefined);
  const namespace =
    config.namespace ?? (typeof meta["namespace"] === "string" ? meta["namespace"] : undefined);
  const scope: Scope = config.scope ?? "strict";
  if (!name) throw new StartupError("the Secret has no metadata.name: give --name");
  if (!namespace && scope !== "cluster-wide")
    throw new StartupError(
      `the Secret has no metadata.namespace: give --namespace (the ${scope} scope binds values to it)`,
    );
  const labels = stringMap(meta["labels"], "the Secret's labels");
  const annotations = stringMap(meta["annotations"], "the Secret's annotations");
  delete annotations["kubectl.kubernetes.io/last-applied-configuration"];
  const type = typeof secret["type"] === "string" ? secret["type"] : undefined;
  const metadata = {
    ...(Object.keys(labels).length > 0 && { labels }),
    ...(Object.keys(annotations).length > 0 && { annotations }),
  };
  return {
    apiVersion: API_VERSION,
    kind: "KmsSecret",
    metadata: { name, ...(namespace && { namespace }) },
    spec: {
      ...(config.keyRef ? { keyRef: { name: config.keyRef } } : { keyId: config.key! }),
      scope,
      encryptedData: {},
      ...((type || Object.keys(metadata).length > 0) && {
        template: { ...(type && { type }), ...(Object.keys(metadata).length > 0 && { metadata }) },
      }),
    },
  };
}

export async function runSeal(config: SealConfig, io: SealIo = processIo): Promise<number> {
  const secret = parseDocument(await io.stdin(), "stdin");
  const entries = secretEntries(secret);
  let out: KmsSecretManifest;
  let key = config.key;
  if (config.mergeInto) {
    out = readKmsSecret(
      readFile(config.mergeInto, "--merge-into").toString("utf8"),
      config.mergeInto,
    );
    const scope: SealingScope = out.spec.scope ?? "strict";
    if (config.scope && config.scope !== scope)
      throw new StartupError(
        `--scope ${config.scope}: ${config.mergeInto} is ${scope}; every value of a KmsSecret has its scope`,
      );
    key ??= out.spec.keyId;
    if (!key)
      throw new StartupError(
        `${config.mergeInto} names its key by keyRef: give --key to seal under`,
      );
  } else out = newKmsSecret(config, secret);
  let client: KMSClient | undefined;
  const kms = () => (client ??= kmsFor(config, io));
  try {
    await sealEntries(out, entries, key!, config.publicKeyFile, kms);
  } finally {
    if (!io.kms) client?.destroy();
  }
  if (config.mergeInto) writeFileSync(config.mergeInto, yamlOf(out));
  else io.stdout(yamlOf(out));
  return 0;
}

export async function runReseal(config: ResealConfig, io: SealIo = processIo): Promise<number> {
  const what = config.file ?? "stdin";
  const text = config.file ? readFile(config.file, "--file").toString("utf8") : await io.stdin();
  const obj = readKmsSecret(text, what);
  const destination = config.key ?? obj.spec.keyId;
  if (!destination) throw new StartupError(`${what} names its key by keyRef: give --key`);
  const scope = obj.spec.scope ?? "strict";
  const kms = kmsFor(config, io);
  const kept: string[] = [];
  try {
    for (const [entry, value] of Object.entries(obj.spec.encryptedData)) {
      const blob = Buffer.from(value, "base64");
      if (parseEnvelope(blob)) {
        kept.push(entry);
        continue;
      }
      const context = sealingContext(scope, {
        namespace: obj.metadata.namespace ?? "",
        name: obj.metadata.name,
        entry,
      });
      try {
        const res = await kms.send(
          new ReEncryptCommand({
            CiphertextBlob: blob,
            SourceEncryptionContext: context,
            DestinationKeyId: destination,
            DestinationEncryptionContext: context,
          }),
        );
        obj.spec.encryptedData[entry] = Buffer.from(res.CiphertextBlob!).toString("base64");
      } catch (err) {
        throw new StartupError(`entry ${entry}: ReEncrypt to ${destination}: ${errorMessage(err)}`);
      }
    }
  } finally {
    if (!io.kms) kms.destroy();
  }
  if (config.key && obj.spec.keyId) obj.spec.keyId = config.key;
  if (kept.length > 0)
    process.stderr.write(
      `keyhaven reseal: kept offline entries as they are (RSA keys do not rotate): ${kept.join(", ")}\n`,
    );
  if (config.file) writeFileSync(config.file, yamlOf(obj));
  else io.stdout(yamlOf(obj));
  return 0;
}
