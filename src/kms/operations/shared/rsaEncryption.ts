/**
 * Encrypt/Decrypt/ReEncrypt with RSA ENCRYPT_DECRYPT keys (RSAES_OAEP_SHA_1/256).
 * Asymmetric ciphertext is the raw OAEP output with no header, as in AWS: Decrypt
 * must name the key and the algorithm, and there is no encryption context.
 */
import {
  oaepDecryptCall,
  oaepEncrypt,
  oaepMaxPlaintext,
  OAEP_HASH,
} from "../../crypto/asymmetric.js";
import type { EncryptionContext } from "../../crypto/encryptionContext.js";
import { kmsError } from "../../errors.js";
import { assertKeyUsage, assertUsable } from "../../keys/keyState.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";
import { type OpenedCiphertext, type OpenOptions } from "./symmetricEncryption.js";
import { checkAlgorithm } from "./encryptionKey.js";

export const isRsaEncryption = (algorithm: string | undefined): boolean =>
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

/** What an RSA key can seal: no encryption context, and a plaintext within OAEP's limit. */
export function checkRsaSealable(
  key: KeyRecord,
  algorithm: string,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): void {
  refuseContext(key, context);
  const max = oaepMaxPlaintext(key.keySpec, algorithm);
  if (plaintext.length > max)
    throw kmsError(
      "ValidationException",
      `Algorithm ${algorithm} and key spec ${key.keySpec} cannot encrypt data larger than ${max} bytes.`,
    );
}

/** Encrypts under an RSA key already checked by `checkRsaSealable`. */
export async function sealRsa(
  ctx: RequestContext,
  key: KeyRecord,
  algorithm: string,
  plaintext: Uint8Array,
): Promise<Buffer> {
  const { publicKey } = await ctx.service.keyPair(key);
  return oaepEncrypt(publicKey, algorithm, plaintext);
}

/** Decrypts OAEP ciphertext with the key the caller names (KeyId is required). */
export async function openRsa(
  ctx: RequestContext,
  algorithm: string,
  options: OpenOptions,
): Promise<OpenedCiphertext> {
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
  const plaintext = await ctx.service.privateKeyCall(
    oaepDecryptCall(privateKey, algorithm, options.blob),
  );
  if (!plaintext) throw kmsError("InvalidCiphertextException");
  return { key, plaintext };
}
