/**
 * The ciphertext of a key in an external key store: double encryption, as AWS KMS does it.
 * Keyhaven's own blob (ciphertext.ts, format 0x01, under the key's own material and bound to
 * the encryption context) is encrypted again by the XKS proxy under the external key; both
 * keys are needed to decrypt. Layout (integers big-endian):
 *
 *   offset  size  field
 *   0       1     format: 0x03
 *   1       16    key id (as in format 0x01)
 *   17      4     key-material version of the inner blob (as in format 0x01)
 *   21      1     i = length of the proxy's initializationVector (12 or 16)
 *   22      i     initializationVector
 *   22+i    1     m = length of the proxy's ciphertextMetadata (0..20)
 *   23+i    m     ciphertextMetadata
 *   23+i+m  16    authenticationTag
 *   39+i+m  n     the proxy's ciphertext of the inner blob
 *
 * The additionalAuthenticatedData sent to the proxy is bytes 0..21 ‖ SHA-256 of the
 * canonical encryption context, so the outer layer too cannot be moved to another key,
 * material version or context (the context itself never leaves Keyhaven).
 */
import { hash } from "node:crypto";
import { CIPHERTEXT_FORMAT_XKS, CiphertextFormatError } from "./ciphertext.js";
import { encodeEncryptionContext, type EncryptionContext } from "./encryptionContext.js";
import type { XksSealed } from "./xksCiphertext.js";

const HEADER = 21;
const TAG = 16;
const MAX_METADATA = 20;

/** The 21-byte header: the format byte, and the inner blob's key id and material version. */
export function externalHeader(innerBlob: Buffer): Buffer {
  const head = Buffer.from(innerBlob.subarray(0, HEADER));
  head[0] = CIPHERTEXT_FORMAT_XKS;
  return head;
}

/** The AAD the proxy binds: the header and a digest of the encryption context. */
export function externalAad(head: Buffer, context: EncryptionContext | undefined): Buffer {
  return Buffer.concat([head, hash("sha256", encodeEncryptionContext(context), "buffer")]);
}

export function encodeExternalCiphertext(head: Buffer, sealed: XksSealed): Buffer {
  const iv = sealed.initializationVector;
  const meta = sealed.ciphertextMetadata;
  return Buffer.concat([
    head,
    Buffer.from([iv.length]),
    iv,
    Buffer.from([meta.length]),
    meta,
    sealed.authenticationTag,
    sealed.ciphertext,
  ]);
}

/** The header and the proxy's parts; throws CiphertextFormatError on anything malformed. */
export function decodeExternalCiphertext(blob: Uint8Array): { head: Buffer; sealed: XksSealed } {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = () => new CiphertextFormatError("not an external key store ciphertext");
  if (buf.length < HEADER + 1 || buf[0] !== CIPHERTEXT_FORMAT_XKS) throw bad();
  const ivLength = buf[HEADER]!;
  if (ivLength !== 12 && ivLength !== 16) throw bad();
  const metaAt = HEADER + 1 + ivLength;
  const metaLength = buf[metaAt];
  if (metaLength === undefined || metaLength > MAX_METADATA) throw bad();
  const tagAt = metaAt + 1 + metaLength;
  if (buf.length <= tagAt + TAG) throw bad();
  return {
    head: buf.subarray(0, HEADER),
    sealed: {
      initializationVector: buf.subarray(HEADER + 1, metaAt),
      ciphertextMetadata: buf.subarray(metaAt + 1, tagAt),
      authenticationTag: buf.subarray(tagAt, tagAt + TAG),
      ciphertext: buf.subarray(tagAt + TAG),
    },
  };
}
