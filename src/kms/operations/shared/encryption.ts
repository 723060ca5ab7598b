/**
 * Encrypt, Decrypt and ReEncrypt under either kind of encryption key: symmetric
 * (symmetricEncryption.ts, AES-GCM with Keyhaven's ciphertext header) or RSA
 * (rsaEncryption.ts, OAEP). The key's spec, or for decryption the algorithm, decides.
 */
import type { EncryptionContext } from "../../crypto/encryptionContext.js";
import { isSymmetric } from "../../keys/keySpecs.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import type { RequestContext } from "../../request.js";
import { checkRsaSealable, isRsaEncryption, openRsa, sealRsa } from "./rsaEncryption.js";
import {
  openSymmetric,
  sealSymmetric,
  type OpenedCiphertext,
  type OpenOptions,
} from "./symmetricEncryption.js";

const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";

/**
 * The checks sealing makes before DryRun, for a key resolved by `encryptionKey`
 * (which checked the algorithm): for an RSA key, no encryption context and a
 * plaintext within OAEP's limit.
 */
export function checkSealable(
  key: KeyRecord,
  algorithm: string | undefined,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): void {
  if (!isSymmetric(key.keySpec)) checkRsaSealable(key, algorithm!, plaintext, context);
}

export interface Sealed {
  readonly blob: Buffer;
  readonly algorithm: string;
}

/** Encrypts under a key resolved by `encryptionKey` and checked by `checkSealable`. */
export async function seal(
  ctx: RequestContext,
  key: KeyRecord,
  algorithm: string | undefined,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Sealed> {
  if (isSymmetric(key.keySpec))
    return {
      blob: await sealSymmetric(ctx, key, plaintext, context),
      algorithm: SYMMETRIC_DEFAULT,
    };
  return { blob: await sealRsa(ctx, key, algorithm!, plaintext), algorithm: algorithm! };
}

export interface Opened extends OpenedCiphertext {
  readonly algorithm: string;
}

/**
 * Decrypts symmetric or RSA ciphertext. An RSAES_OAEP_* algorithm selects RSA (KeyId
 * required); otherwise the blob's own header names the key.
 */
export async function open(ctx: RequestContext, options: OpenOptions): Promise<Opened> {
  const algorithm = options.algorithm;
  // Members copied rather than spread: see AuditServed (audit/auditRecord.ts) on why.
  if (algorithm !== undefined && isRsaEncryption(algorithm)) {
    const { key, plaintext } = await openRsa(ctx, algorithm, options);
    return { key, plaintext, algorithm };
  }
  const { key, plaintext } = await openSymmetric(ctx, options);
  return { key, plaintext, algorithm: SYMMETRIC_DEFAULT };
}
