/** Symmetric encryption (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*): AES-GCM under the key's material, in Keyhaven's ciphertext format. */
import type { EncryptionAlgorithmSpec } from "@aws-sdk/client-kms";
import { checkAlgorithm } from "./encryptionKey.js";
import {
  openCiphertext,
  openCiphertextWith,
  readCiphertextHeader,
  sealCiphertext,
  sealCiphertextWith,
  CiphertextFormatError,
} from "../../crypto/ciphertext.js";
import type { EncryptionContext } from "../../crypto/encryptionContext.js";
import { kmsError } from "../../errors.js";
import { assertKeyUsage, assertMaterialCurrent, assertUsable } from "../../keys/keyState.js";
import { resolveKey } from "../../keys/resolveKey.js";
import { authorizeKey } from "../../access/useKey.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import type { RequestContext } from "../../request.js";
import { customKeyStores } from "./customKeyStore.js";

/** Encrypts under the key's current material version. */
export async function sealSymmetric(
  ctx: RequestContext,
  key: KeyRecord,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Buffer> {
  const version = key.currentMaterialVersion;
  if (key.customKeyStoreId !== undefined)
    return sealCiphertextWith(
      customKeyStores(ctx).connectionFor(key).gcm(key.keyId),
      { keyId: key.keyId, materialVersion: version },
      plaintext,
      context,
      ctx.service.random,
    );
  const material = await ctx.service.symmetricKey(key, version);
  return sealCiphertext(
    material,
    { keyId: key.keyId, materialVersion: version },
    plaintext,
    context,
    ctx.service.random,
  );
}

export interface OpenedCiphertext {
  readonly key: KeyRecord;
  readonly plaintext: Buffer;
}

export interface OpenOptions {
  readonly blob: Uint8Array;
  readonly context: EncryptionContext | undefined;
  /** The KeyId the caller named, if any; it must be the key the blob names. */
  readonly keyId: string | undefined;
  readonly algorithm: EncryptionAlgorithmSpec | undefined;
  /** Operation name for key-usage messages. */
  readonly operation: string;
  /** IAM action when it is not kms:<Operation> (ReEncrypt's kms:ReEncryptFrom). */
  readonly action?: string;
  /** Runs once every check has passed, before decrypting (the DryRun hook). */
  readonly beforeDecrypt?: () => void;
}

/**
 * Finds the key a symmetric blob names (checking it against `keyId` if the caller
 * gave one), authorizes and checks its state, and decrypts. A malformed or
 * tampered blob, and any context mismatch, is InvalidCiphertextException with
 * AWS's empty message.
 */
export async function openSymmetric(
  ctx: RequestContext,
  options: OpenOptions,
): Promise<OpenedCiphertext> {
  let header;
  try {
    header = readCiphertextHeader(options.blob);
  } catch (err) {
    if (err instanceof CiphertextFormatError) throw kmsError("InvalidCiphertextException");
    throw err;
  }
  let key: KeyRecord | undefined;
  if (options.keyId !== undefined) {
    key = await resolveKey(ctx.service, options.keyId, { aliases: true });
    if (key.keyId !== header.keyId) {
      ctx.resources.push(key.arn);
      throw kmsError(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
      );
    }
  } else {
    key = await ctx.service.store.getKey(header.keyId);
    if (!key) {
      throw kmsError(
        "NotFoundException",
        `Key '${ctx.service.keyArn(header.keyId)}' does not exist`,
      );
    }
  }
  await authorizeKey(ctx, key, options.action);
  assertUsable(key);
  assertMaterialCurrent(key, ctx.service.clock.now().getTime());
  assertKeyUsage(key, "ENCRYPT_DECRYPT", options.operation);
  checkAlgorithm(key, options.algorithm);
  if (header.materialVersion < 1 || header.materialVersion > key.currentMaterialVersion) {
    throw kmsError("InvalidCiphertextException");
  }
  options.beforeDecrypt?.();
  const plaintext =
    key.customKeyStoreId === undefined
      ? openCiphertext(
          await ctx.service.symmetricKey(key, header.materialVersion),
          options.blob,
          options.context,
        )
      : await openCiphertextWith(
          customKeyStores(ctx).connectionFor(key).gcm(key.keyId),
          options.blob,
          options.context,
        );
  if (!plaintext) throw kmsError("InvalidCiphertextException");
  return { key, plaintext };
}
