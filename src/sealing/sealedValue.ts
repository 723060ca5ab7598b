/**
 * The sealed format of a KmsSecret value (docs/gitops-secrets.md is its public
 * description; keep the two in step). Every value is bound to where it belongs by an
 * encryption context chosen by the scope:
 *
 *   strict          {"keyhaven.dev/namespace": NS, "keyhaven.dev/name": NAME, "keyhaven.dev/entry": ENTRY}
 *   namespace-wide  {"keyhaven.dev/namespace": NS}
 *   cluster-wide    {"keyhaven.dev/scope": "cluster-wide"}
 *
 * Online values are plain KMS Encrypt ciphertext blobs made with that context, so
 * `aws kms decrypt --encryption-context ...` opens them. Offline values are an
 * envelope made with only an RSA key's public key (GetPublicKey):
 *
 *   "KHSEAL" | 0x01 | u16 BE length of W | W | IV (12) | tag (16) | C
 *
 * W = RSAES-OAEP(SHA-256, MGF1 SHA-256) of a fresh 32-byte key K under the public key;
 * C = AES-256-GCM under K with IV, AAD = the UTF-8 bytes of the context as JSON with
 * its keys sorted and no whitespace. KMS Decrypt with RSAES_OAEP_SHA_256 gives K back;
 * the AAD keeps the binding to namespace, name and entry offline too.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
  constants,
  type KeyObject,
} from "node:crypto";

export const SCOPES = ["strict", "namespace-wide", "cluster-wide"] as const;
export type Scope = (typeof SCOPES)[number];

export const CONTEXT_NAMESPACE = "keyhaven.dev/namespace";
export const CONTEXT_NAME = "keyhaven.dev/name";
export const CONTEXT_ENTRY = "keyhaven.dev/entry";
export const CONTEXT_SCOPE = "keyhaven.dev/scope";

/** Where a value is meant to be opened. */
export interface SealTarget {
  readonly namespace: string;
  readonly name: string;
  readonly entry: string;
}

/** The encryption context that binds a value to its place, per scope. */
export function sealingContext(scope: Scope, target: SealTarget): Record<string, string> {
  switch (scope) {
    case "strict":
      return {
        [CONTEXT_ENTRY]: target.entry,
        [CONTEXT_NAME]: target.name,
        [CONTEXT_NAMESPACE]: target.namespace,
      };
    case "namespace-wide":
      return { [CONTEXT_NAMESPACE]: target.namespace };
    case "cluster-wide":
      return { [CONTEXT_SCOPE]: "cluster-wide" };
  }
}

/** The offline envelope's AAD: the context as sorted, compact JSON. */
export function contextAad(context: Readonly<Record<string, string>>): Buffer {
  const sorted = Object.fromEntries(
    Object.keys(context)
      .sort()
      .map((k) => [k, context[k]]),
  );
  return Buffer.from(JSON.stringify(sorted), "utf8");
}

const MAGIC = Buffer.from("KHSEAL", "ascii");
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The parts of an offline envelope. */
export interface Envelope {
  readonly wrappedKey: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

export class SealedValueError extends Error {
  override name = "SealedValueError";
}

/** Reads an RSA public key as GetPublicKey gives it (DER SubjectPublicKeyInfo) or as PEM. */
export function readPublicKey(bytes: Buffer): KeyObject {
  const text = bytes.toString("utf8");
  try {
    const key = text.includes("-----BEGIN")
      ? createPublicKey(text)
      : createPublicKey({ key: bytes, format: "der", type: "spki" });
    if (key.asymmetricKeyType !== "rsa") throw new SealedValueError("not an RSA public key");
    return key;
  } catch (err) {
    if (err instanceof SealedValueError) throw err;
    throw new SealedValueError(
      "not an RSA public key (DER SubjectPublicKeyInfo, as GetPublicKey gives it, or PEM)",
    );
  }
}

/** Seals `plaintext` offline: a fresh AES-256-GCM key wrapped with RSA-OAEP (SHA-256). */
export function sealOffline(
  publicKey: KeyObject,
  context: Readonly<Record<string, string>>,
  plaintext: Buffer,
): Buffer {
  const key = randomBytes(32);
  try {
    const wrappedKey = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      key,
    );
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(contextAad(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(wrappedKey.length);
    return Buffer.concat([
      MAGIC,
      Buffer.from([VERSION]),
      length,
      wrappedKey,
      iv,
      cipher.getAuthTag(),
      ciphertext,
    ]);
  } finally {
    key.fill(0);
  }
}

/** The envelope's parts, or undefined when `blob` is not an offline envelope (an online ciphertext). */
export function parseEnvelope(blob: Buffer): Envelope | undefined {
  if (blob.length < MAGIC.length + 1 || !blob.subarray(0, MAGIC.length).equals(MAGIC))
    return undefined;
  if (blob[MAGIC.length] !== VERSION)
    throw new SealedValueError(`unknown offline envelope version ${blob[MAGIC.length]}`);
  let at = MAGIC.length + 1;
  if (blob.length < at + 2) throw new SealedValueError("truncated offline envelope");
  const wrappedLength = blob.readUInt16BE(at);
  at += 2;
  if (blob.length < at + wrappedLength + IV_BYTES + TAG_BYTES)
    throw new SealedValueError("truncated offline envelope");
  const wrappedKey = blob.subarray(at, (at += wrappedLength));
  const iv = blob.subarray(at, (at += IV_BYTES));
  const tag = blob.subarray(at, (at += TAG_BYTES));
  return { wrappedKey, iv, tag, ciphertext: blob.subarray(at) };
}

/** Opens an envelope with its data key (from KMS Decrypt); a wrong context or any change fails. */
export function openEnvelope(
  envelope: Envelope,
  dataKey: Uint8Array,
  context: Readonly<Record<string, string>>,
): Buffer {
  if (dataKey.length !== 32) throw new SealedValueError("the data key is not 32 bytes");
  try {
    const decipher = createDecipheriv("aes-256-gcm", dataKey, envelope.iv);
    decipher.setAAD(contextAad(context));
    decipher.setAuthTag(envelope.tag);
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  } catch {
    throw new SealedValueError(
      "the value does not open with this encryption context (moved, or changed)",
    );
  }
}
