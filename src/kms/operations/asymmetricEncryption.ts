/**
 * Encrypt/Decrypt/ReEncrypt with RSA ENCRYPT_DECRYPT keys (RSAES_OAEP_SHA_1/256),
 * beside the symmetric steps in symmetric.ts. Asymmetric ciphertext is the raw OAEP
 * output with no header, as in AWS: Decrypt must name the key and the algorithm, and
 * there is no encryption context.
 */
import { oaepDecrypt, oaepEncrypt, oaepMaxPlaintext, OAEP_HASH } from "../crypto/asymmetric.js";
import type { EncryptionContext } from "../crypto/encryptionContext.js";
import { kmsError } from "../errors.js";
import { assertKeyUsage, assertUsable } from "../keys/keyState.js";
import { isSymmetric } from "../keys/keySpecs.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { useKey } from "../access/useKey.js";
import type { RequestContext } from "../request.js";
import {
  checkAlgorithm,
  openSymmetric,
  sealSymmetric,
  type OpenedCiphertext,
  type OpenOptions,
} from "./symmetric.js";

export const isAsymmetricEncryption = (algorithm: string | undefined): boolean =>
  algorithm !== undefined && algorithm in OAEP_HASH;

const hasContext = (context: EncryptionContext | undefined): boolean =>
  context !== undefined && Object.keys(context).length > 0;

function refuseContext(key: KeyRecord, context: EncryptionContext | undefined): void {
  if (hasContext(context))
    throw kmsError(
      "ValidationException",
      `EncryptionContext is supported only with symmetric encryption KMS keys; omit it for ${key.arn} (key spec ${key.keySpec}).`,
    );
}

/**
 * The checks Encrypt makes before DryRun for a key resolved by `encryptionKey`: for
 * an RSA key, no encryption context and a plaintext within OAEP's limit.
 */
export function checkSealable(
  key: KeyRecord,
  algorithm: string | undefined,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): void {
  if (isSymmetric(key.keySpec)) return;
  refuseContext(key, context);
  const max = oaepMaxPlaintext(key.keySpec, algorithm!);
  if (plaintext.length > max)
    throw kmsError(
      "ValidationException",
      `Algorithm ${algorithm} and key spec ${key.keySpec} cannot encrypt data larger than ${max} bytes.`,
    );
}

export interface Sealed {
  readonly blob: Buffer;
  readonly algorithm: string;
}

/** Encrypts under a key already resolved and checked by `encryptionKey`. */
export async function sealFor(
  ctx: RequestContext,
  key: KeyRecord,
  algorithm: string | undefined,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Sealed> {
  if (isSymmetric(key.keySpec)) {
    return {
      blob: await sealSymmetric(ctx, key, plaintext, context),
      algorithm: "SYMMETRIC_DEFAULT",
    };
  }
  checkSealable(key, algorithm, plaintext, context);
  const { publicKey } = await ctx.service.keyPair(key);
  return { blob: oaepEncrypt(publicKey, algorithm!, plaintext), algorithm: algorithm! };
}

export interface Opened extends OpenedCiphertext {
  readonly algorithm: string;
}

/**
 * Decrypts symmetric or asymmetric ciphertext. An RSAES_OAEP_* algorithm selects
 * the asymmetric path (KeyId required); otherwise the blob's own header names the
 * key, as before.
 */
export async function openFor(ctx: RequestContext, options: OpenOptions): Promise<Opened> {
  if (!isAsymmetricEncryption(options.algorithm)) {
    const opened = await openSymmetric(ctx, options);
    return { ...opened, algorithm: "SYMMETRIC_DEFAULT" };
  }
  const algorithm = options.algorithm!;
  if (options.keyId === undefined)
    throw kmsError(
      "ValidationException",
      `KeyId is required to decrypt with ${algorithm}: asymmetric ciphertext does not name its key.`,
    );
  const key = await useKey(ctx, options.keyId, {
    aliases: true,
    ...(options.action !== undefined && { action: options.action }),
  });
  assertUsable(key);
  assertKeyUsage(key, "ENCRYPT_DECRYPT", options.operation);
  checkAlgorithm(key, algorithm);
  refuseContext(key, options.context);
  options.beforeDecrypt?.();
  const { privateKey } = await ctx.service.keyPair(key);
  const plaintext = oaepDecrypt(privateKey, algorithm, options.blob);
  if (!plaintext) throw kmsError("InvalidCiphertextException");
  return { key, plaintext, algorithm };
}
