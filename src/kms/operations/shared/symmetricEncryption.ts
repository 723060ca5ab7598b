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
import {
  decodeExternalCiphertext,
  encodeExternalCiphertext,
  externalAad,
  externalHeader,
} from "../../crypto/externalKeyCiphertext.js";
import type {
  ExternalKeyLayer,
  KeyStoreConnection,
  KeyStoreRequest,
} from "../../customkeystore/customKeyStores.js";
import type { ExternalGcm } from "../../crypto/ciphertext.js";

/** The GCM of a key in an AWS_CLOUDHSM store. */
function tokenGcm(connection: KeyStoreConnection, key: KeyRecord): ExternalGcm {
  if (!connection.gcm)
    throw kmsError("KMSInternalException", `${key.arn}: its store computes no GCM.`);
  return connection.gcm(key.keyId);
}

/** The outer layer of a key in an EXTERNAL_KEY_STORE store. */
function externalLayer(ctx: RequestContext, key: KeyRecord): ExternalKeyLayer {
  const layer = customKeyStores(ctx).connectionFor(key).external;
  if (!layer) throw kmsError("KMSInternalException", `${key.arn}: its store has no outer layer.`);
  return layer;
}

const storeRequest = (ctx: RequestContext): KeyStoreRequest => ({
  principal: ctx.caller.principal,
  operation: ctx.operation,
  requestId: ctx.requestId,
});

/** Encrypts under the key's current material version. */
export async function sealSymmetric(
  ctx: RequestContext,
  key: KeyRecord,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Buffer> {
  const version = key.currentMaterialVersion;
  if (key.customKeyStoreId !== undefined && key.xksKeyId === undefined)
    return sealCiphertextWith(
      tokenGcm(customKeyStores(ctx).connectionFor(key), key),
      { keyId: key.keyId, materialVersion: version },
      plaintext,
      context,
      ctx.service.random,
    );
  // An external key store's key: its proxy must be there before any material is used.
  const layer = key.xksKeyId === undefined ? undefined : externalLayer(ctx, key);
  const material = await ctx.service.symmetricKey(key, version);
  const inner = sealCiphertext(
    material,
    { keyId: key.keyId, materialVersion: version },
    plaintext,
    context,
    ctx.service.random,
  );
  if (!layer) return inner;
  // Double encryption: the proxy encrypts Keyhaven's blob again under the external key.
  const head = externalHeader(inner);
  const sealed = await layer.encrypt(key, inner, externalAad(head, context), storeRequest(ctx));
  return encodeExternalCiphertext(head, sealed);
}

/** The inner blob of an external key store's ciphertext, decrypted by its proxy; undefined if malformed. */
async function openExternal(
  ctx: RequestContext,
  key: KeyRecord,
  blob: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Buffer | undefined> {
  let parts;
  try {
    parts = decodeExternalCiphertext(blob);
  } catch (err) {
    if (err instanceof CiphertextFormatError) return undefined;
    throw err;
  }
  return externalLayer(ctx, key).decrypt(
    key,
    parts.sealed,
    externalAad(parts.head, context),
    storeRequest(ctx),
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
  const inner =
    key.xksKeyId === undefined
      ? options.blob
      : await openExternal(ctx, key, options.blob, options.context);
  const plaintext =
    inner === undefined
      ? undefined
      : key.customKeyStoreId === undefined || key.xksKeyId !== undefined
        ? openCiphertext(
            await ctx.service.symmetricKey(key, header.materialVersion),
            inner,
            options.context,
          )
        : await openCiphertextWith(
            tokenGcm(customKeyStores(ctx).connectionFor(key), key),
            options.blob,
            options.context,
          );
  if (!plaintext) throw kmsError("InvalidCiphertextException");
  return { key, plaintext };
}
