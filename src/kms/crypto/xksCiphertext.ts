/**
 * AES-256-GCM as the XKS Proxy API specification defines it (aws/aws-kms-xksproxy-api-spec,
 * "Encrypt" and Appendix C). The proxy returns the parts separately: `ciphertext` (as long as
 * the plaintext), a 12-byte `initializationVector`, a 16-byte `authenticationTag`, and
 * Keyhaven's `ciphertextMetadata` (vendor-defined, at most 20 bytes):
 *
 *   offset  size  field
 *   0       1     metadata format, 0x01
 *   1       4     key-material version (u32, big-endian), so old ciphertext decrypts after rotation
 *
 * The GCM AAD is the spec's length-prefixed concatenation, which keeps `aad` and metadata from
 * being shifted into each other:
 *
 *   u16be(len(aad)) ‖ aad ‖ u8(len(metadata)) ‖ metadata
 *
 * Decrypt accepts 12- or 16-byte IVs (the spec allows both). The Ciphertext Data Integrity
 * Value (CDIV) is SHA-256 over aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag, computed before the
 * proxy proves the output decrypts (Appendix C's order).
 */
import { createCipheriv, createDecipheriv, hash, type KeyObject } from "node:crypto";
import type { RandomSource } from "./random.js";

export const XKS_METADATA_FORMAT_V1 = 0x01;
const METADATA_V1 = 5;
/** The spec's bounds on the parts. */
export const XKS_MAX_METADATA = 20;
export const XKS_MAX_AAD = 0xffff;
const IV = 12;
const TAG = 16;

export interface XksSealed {
  readonly ciphertext: Buffer;
  readonly ciphertextMetadata: Buffer;
  readonly initializationVector: Buffer;
  readonly authenticationTag: Buffer;
}

export interface XksParts {
  readonly ciphertext: Buffer;
  readonly ciphertextMetadata: Buffer | undefined;
  readonly initializationVector: Buffer;
  readonly authenticationTag: Buffer;
}

/** The GCM AAD of the spec: both lengths always present (zero when a part is absent). */
export function xksAad(aad: Buffer | undefined, metadata: Buffer | undefined): Buffer {
  const a = aad ?? Buffer.alloc(0);
  const m = metadata ?? Buffer.alloc(0);
  if (a.length > XKS_MAX_AAD || m.length > XKS_MAX_METADATA)
    throw new RangeError("AAD or ciphertext metadata too long");
  const out = Buffer.allocUnsafe(2 + a.length + 1 + m.length);
  out.writeUInt16BE(a.length, 0);
  a.copy(out, 2);
  out.writeUInt8(m.length, 2 + a.length);
  m.copy(out, 3 + a.length);
  return out;
}

export function xksMetadata(materialVersion: number): Buffer {
  const m = Buffer.allocUnsafe(METADATA_V1);
  m.writeUInt8(XKS_METADATA_FORMAT_V1, 0);
  m.writeUInt32BE(materialVersion, 1);
  return m;
}

/** The material version in Keyhaven's metadata; undefined when it is not Keyhaven's format 1. */
export function xksMaterialVersion(metadata: Buffer | undefined): number | undefined {
  if (metadata?.length !== METADATA_V1 || metadata[0] !== XKS_METADATA_FORMAT_V1) return undefined;
  return metadata.readUInt32BE(1);
}

export function sealXks(
  material: KeyObject,
  materialVersion: number,
  plaintext: Buffer,
  aad: Buffer | undefined,
  random: RandomSource,
): XksSealed {
  const ciphertextMetadata = xksMetadata(materialVersion);
  const initializationVector = random(IV);
  const cipher = createCipheriv("aes-256-gcm", material, initializationVector);
  cipher.setAAD(xksAad(aad, ciphertextMetadata));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    ciphertext,
    ciphertextMetadata,
    initializationVector,
    authenticationTag: cipher.getAuthTag(),
  };
}

/** The plaintext, or undefined when the parts, the AAD or the metadata do not authenticate. */
export function openXks(
  material: KeyObject,
  parts: XksParts,
  aad: Buffer | undefined,
): Buffer | undefined {
  const iv = parts.initializationVector.length;
  if ((iv !== 12 && iv !== 16) || parts.authenticationTag.length !== TAG) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", material, parts.initializationVector, {
      authTagLength: TAG,
    });
    decipher.setAAD(xksAad(aad, parts.ciphertextMetadata));
    decipher.setAuthTag(parts.authenticationTag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Appendix C: SHA-256 over the decoded aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag (absent = empty). */
export function xksIntegrityValue(aad: Buffer | undefined, parts: XksParts): Buffer {
  return hash(
    "sha256",
    Buffer.concat([
      aad ?? Buffer.alloc(0),
      parts.ciphertextMetadata ?? Buffer.alloc(0),
      parts.initializationVector,
      parts.ciphertext,
      parts.authenticationTag,
    ]),
    "buffer",
  );
}
