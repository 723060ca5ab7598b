/** Shared steps of the symmetric encryption operations (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*). */
import type { EncryptionAlgorithmSpec } from "@aws-sdk/client-kms";
import {
  openCiphertext,
  readCiphertextHeader,
  sealCiphertext,
  CiphertextFormatError,
} from "../crypto/ciphertext.js";
import type { EncryptionContext } from "../crypto/encryptionContext.js";
import { kmsError } from "../errors.js";
import { assertKeyUsage, assertUsable } from "../keys/keyState.js";
import { resolveKey } from "../keys/resolveKey.js";
import { isSymmetric } from "../keys/keySpecs.js";
import type { KeyRecord } from "../store/keyStore.js";
import type { RequestContext } from "./operation.js";

const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";

/** Resolves a key that must be Enabled and able to encrypt, and checks the requested algorithm. */
export async function encryptionKey(
  ctx: RequestContext,
  keyId: string,
  operation: string,
  algorithm: EncryptionAlgorithmSpec | undefined,
): Promise<KeyRecord> {
  const key = await resolveKey(ctx.service, keyId, { aliases: true });
  ctx.resources.push(key.arn);
  assertUsable(key);
  assertKeyUsage(key, "ENCRYPT_DECRYPT", operation);
  checkAlgorithm(key, algorithm);
  return key;
}

function checkAlgorithm(key: KeyRecord, algorithm: string | undefined): void {
  if (isSymmetric(key.keySpec) && algorithm !== undefined && algorithm !== SYMMETRIC_DEFAULT) {
    throw kmsError(
      "InvalidKeyUsageException",
      `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`,
    );
  }
  if (!isSymmetric(key.keySpec)) {
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} has key spec ${key.keySpec}, which this operation does not support.`,
    );
  }
}

/** Encrypts under the key's current material version. */
export async function sealSymmetric(
  ctx: RequestContext,
  key: KeyRecord,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Promise<Buffer> {
  const version = key.currentMaterialVersion;
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

/**
 * Finds the key a symmetric blob names (checking it against `keyId` if the caller
 * gave one), checks its state, and decrypts. Any malformed or tampered blob, and
 * any context mismatch, is InvalidCiphertextException with AWS's empty message.
 * `beforeDecrypt` runs once every check has passed (the DryRun hook).
 */
export async function openSymmetric(
  ctx: RequestContext,
  blob: Uint8Array,
  context: EncryptionContext | undefined,
  keyId: string | undefined,
  algorithm: EncryptionAlgorithmSpec | undefined,
  operation: string,
  beforeDecrypt: () => void = () => {},
): Promise<OpenedCiphertext> {
  let header;
  try {
    header = readCiphertextHeader(blob);
  } catch (err) {
    if (err instanceof CiphertextFormatError) throw kmsError("InvalidCiphertextException");
    throw err;
  }
  let key: KeyRecord | undefined;
  if (keyId !== undefined) {
    key = await resolveKey(ctx.service, keyId, { aliases: true });
    if (key.keyId !== header.keyId) {
      throw kmsError(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
      );
    }
  } else {
    key = await ctx.service.store.getKey(header.keyId);
    if (!key)
      throw kmsError(
        "NotFoundException",
        `Key '${ctx.service.keyArn(header.keyId)}' does not exist`,
      );
  }
  ctx.resources.push(key.arn);
  assertUsable(key);
  assertKeyUsage(key, "ENCRYPT_DECRYPT", operation);
  checkAlgorithm(key, algorithm);
  if (header.materialVersion < 1 || header.materialVersion > key.currentMaterialVersion)
    throw kmsError("InvalidCiphertextException");
  beforeDecrypt();
  const material = await ctx.service.symmetricKey(key, header.materialVersion);
  const plaintext = openCiphertext(material, blob, context);
  if (!plaintext) throw kmsError("InvalidCiphertextException");
  return { key, plaintext };
}

export function unsupportedRecipient(input: { Recipient?: unknown }): void {
  if (input.Recipient !== undefined) {
    throw kmsError(
      "UnsupportedOperationException",
      "Recipient (Nitro Enclaves attestation) is not supported by Keyhaven.",
    );
  }
}
