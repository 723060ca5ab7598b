/**
 * Keyhaven's symmetric ciphertext blob, format version 1 (all integers big-endian):
 *
 *   offset  size  field
 *   0       1     format version: 0x01, or 0x02 for a multi-Region key
 *   1       16    key id (the UUID's 16 bytes; for 0x02 the 16 bytes after `mrk-`)
 *   17      4     key-material version (u32), so old ciphertext decrypts after rotation
 *   21      12    random IV
 *   33      n     AES-256-GCM ciphertext
 *   33+n    16    GCM tag
 *
 * AAD = bytes 0..21 (version, key id, material version) ‖ encodeEncryptionContext(ctx).
 * Binding the header means a blob cannot be pointed at another key or version, and
 * binding the canonical context means any change to it fails authentication.
 *
 * Keys in a custom key store have the same format; the GCM is computed by their HSM
 * (`ExternalGcm`, sealCiphertextWith / openCiphertextWith). Keys in an external key store
 * wrap this blob once more under their external key (format 0x03, externalKeyCiphertext.ts);
 * the first 21 bytes have the same layout, so readCiphertextHeader finds their key too.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from "node:crypto";
import { encodeEncryptionContext, type EncryptionContext } from "./encryptionContext.js";
import type { RandomSource } from "./random.js";

export const CIPHERTEXT_FORMAT_V1 = 0x01;
/** The same layout for multi-Region keys (`mrk-` + 32 hex): every replica reads the same id. */
export const CIPHERTEXT_FORMAT_MRK = 0x02;
/** A key in an external key store: this blob, encrypted again by the XKS proxy (externalKeyCiphertext.ts). */
export const CIPHERTEXT_FORMAT_XKS = 0x03;
const MRK_PREFIX = "mrk-";
const HEADER = 21;
const IV = 12;
const TAG = 16;
export const CIPHERTEXT_OVERHEAD = HEADER + IV + TAG;

export interface CiphertextHeader {
  readonly keyId: string;
  readonly materialVersion: number;
}

export class CiphertextFormatError extends Error {
  override name = "CiphertextFormatError";
}

/** The 16 bytes of recently used key ids: every Encrypt would otherwise re-parse the same few. */
const keyIdBytes = new Map<string, Buffer>();

function uuidToBytes(keyId: string): Buffer {
  let bytes = keyIdBytes.get(keyId);
  if (bytes === undefined) {
    const hex = (keyId.startsWith(MRK_PREFIX) ? keyId.slice(MRK_PREFIX.length) : keyId).replace(
      /-/g,
      "",
    );
    if (!/^[0-9a-f]{32}$/.test(hex)) throw new CiphertextFormatError(`not a key id: ${keyId}`);
    bytes = Buffer.from(hex, "hex");
    if (keyIdBytes.size >= 1024) keyIdBytes.clear();
    keyIdBytes.set(keyId, bytes);
  }
  return bytes;
}

function bytesToUuid(bytes: Buffer): string {
  const h = bytes.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The AAD: the blob's 21 header bytes followed by the canonical encryption context. */
function additionalData(blob: Buffer, context: EncryptionContext | undefined): Buffer {
  const encoded = encodeEncryptionContext(context);
  const aad = Buffer.allocUnsafe(HEADER + encoded.length);
  blob.copy(aad, 0, 0, HEADER);
  encoded.copy(aad, HEADER);
  return aad;
}

/** Reads the header without decrypting; throws CiphertextFormatError on anything malformed. */
export function readCiphertextHeader(blob: Uint8Array): CiphertextHeader {
  const format = blob[0];
  if (
    blob.length < CIPHERTEXT_OVERHEAD ||
    (format !== CIPHERTEXT_FORMAT_V1 &&
      format !== CIPHERTEXT_FORMAT_MRK &&
      format !== CIPHERTEXT_FORMAT_XKS)
  ) {
    throw new CiphertextFormatError("not a Keyhaven ciphertext blob");
  }
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const id = buf.subarray(1, 17);
  return {
    keyId: format === CIPHERTEXT_FORMAT_MRK ? MRK_PREFIX + id.toString("hex") : bytesToUuid(id),
    materialVersion: buf.readUInt32BE(17),
  };
}

export function sealCiphertext(
  key: KeyObject,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  random: RandomSource,
): Buffer {
  const out = Buffer.allocUnsafe(CIPHERTEXT_OVERHEAD + plaintext.length);
  out[0] = header.keyId.startsWith(MRK_PREFIX) ? CIPHERTEXT_FORMAT_MRK : CIPHERTEXT_FORMAT_V1;
  uuidToBytes(header.keyId).copy(out, 1);
  out.writeUInt32BE(header.materialVersion, 17);
  const iv = random(IV);
  iv.copy(out, HEADER);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(additionalData(out, context));
  let at = HEADER + IV;
  at += cipher.update(plaintext).copy(out, at);
  // GCM is a stream mode: final() never returns bytes, only completes the tag.
  cipher.final();
  cipher.getAuthTag().copy(out, at);
  return out;
}

/** Decrypts a blob whose header was read with readCiphertextHeader; returns undefined if authentication fails. */
export function openCiphertext(
  key: KeyObject,
  blob: Uint8Array,
  context: EncryptionContext | undefined,
): Buffer | undefined {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", key, buf.subarray(HEADER, HEADER + IV));
  decipher.setAAD(additionalData(buf, context));
  decipher.setAuthTag(buf.subarray(buf.length - TAG));
  const plaintext = decipher.update(buf.subarray(HEADER + IV, buf.length - TAG));
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch {
    plaintext.fill(0);
    return undefined;
  }
}

/** AES-256-GCM computed outside the process (a key that stays in an HSM). */
export interface ExternalGcm {
  /** Ciphertext ‖ tag (16) of `plaintext` under the 12-byte `iv`, with `aad`. */
  seal(iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<Buffer>;
  /** The plaintext of ciphertext ‖ tag, or undefined when it does not authenticate. */
  open(iv: Buffer, sealed: Buffer, aad: Buffer): Promise<Buffer | undefined>;
}

/** sealCiphertext with the GCM done by `gcm`: the same blob format. */
export async function sealCiphertextWith(
  gcm: ExternalGcm,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  random: RandomSource,
): Promise<Buffer> {
  const head = Buffer.allocUnsafe(HEADER);
  head[0] = CIPHERTEXT_FORMAT_V1;
  uuidToBytes(header.keyId).copy(head, 1);
  head.writeUInt32BE(header.materialVersion, 17);
  const iv = random(IV);
  const sealed = await gcm.seal(iv, Buffer.from(plaintext), additionalData(head, context));
  return Buffer.concat([head, iv, sealed]);
}

/** openCiphertext with the GCM done by `gcm`; undefined if authentication fails. */
export function openCiphertextWith(
  gcm: ExternalGcm,
  blob: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Buffer | undefined> {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  return gcm.open(
    buf.subarray(HEADER, HEADER + IV),
    buf.subarray(HEADER + IV),
    additionalData(buf, context),
  );
}
