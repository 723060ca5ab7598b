import { timingSafeEqual } from "node:crypto";
import type { ImportKeyMaterialRequest, ImportKeyMaterialResponse } from "@aws-sdk/client-kms";
import {
  checkImportedMaterial,
  ImportedMaterialError,
  ImportTokenError,
  ImportUnwrapError,
  materialFingerprint,
  openImportToken,
  unwrapKeyMaterial,
} from "../crypto/importWrapping.js";
import { kmsError } from "../errors.js";
import { assertImportable } from "../keys/keyState.js";
import { DAY_MS } from "../keys/dueDates.js";
import { omit } from "../lifecycle/omit.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { useKey } from "../access/useKey.js";
import { wrappingKeyContext } from "./getParametersForImport.js";
import { importableSpec } from "../keys/importRules.js";
import { defineOperation, type WithRequired } from "./operation.js";
import type { RequestContext } from "../request.js";

const MAX_VALID_TO_MS = 365 * DAY_MS;

const sameId = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function expiration(
  input: ImportKeyMaterialRequest,
  now: number,
): { model: string; validTo?: number } {
  const model = input.ExpirationModel ?? "KEY_MATERIAL_EXPIRES";
  if (model === "KEY_MATERIAL_DOES_NOT_EXPIRE") {
    if (input.ValidTo !== undefined)
      throw kmsError(
        "ValidationException",
        "ValidTo is not allowed when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE; omit ValidTo or use KEY_MATERIAL_EXPIRES.",
      );
    return { model };
  }
  if (input.ValidTo === undefined)
    throw kmsError(
      "ValidationException",
      "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES (the default); pass ValidTo, or ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE.",
    );
  const validTo = input.ValidTo.getTime();
  if (validTo <= now || validTo > now + MAX_VALID_TO_MS)
    throw kmsError(
      "ValidationException",
      "ValidTo must be a future date and time, at most 365 days from now.",
    );
  return { model, validTo };
}

/** Opens the token for this key and recovers the material with the stored wrapping key. */
async function unwrapRequest(
  ctx: RequestContext,
  key: KeyRecord,
  input: WithRequired<ImportKeyMaterialRequest, "KeyId" | "ImportToken" | "EncryptedKeyMaterial">,
  now: number,
): Promise<Buffer> {
  const service = ctx.service;
  const invalid = () =>
    kmsError(
      "InvalidImportTokenException",
      `The import token is not valid for ${key.arn}; call GetParametersForImport for this key and use the ImportToken of that response.`,
    );
  let claims;
  try {
    claims = await openImportToken(
      (w, c) => service.rootKey.unwrap(w, c),
      key.keyId,
      input.ImportToken,
    );
  } catch (err) {
    if (err instanceof ImportTokenError) throw invalid();
    throw err;
  }
  if (claims.expiresAt <= now)
    throw kmsError(
      "ExpiredImportTokenException",
      "The import token has expired (they are valid 24 hours); call GetParametersForImport again and wrap the key material with the new public key.",
    );
  const parameters = await service.store.getImportParameters(claims.tokenId);
  if (!parameters || parameters.keyId !== key.keyId) throw invalid();
  const privateKey = await service.rootKey.unwrap(
    parameters.wrappedPrivateKey,
    wrappingKeyContext(parameters.tokenId),
  );
  try {
    return await unwrapKeyMaterial(
      privateKey,
      parameters.wrappingAlgorithm,
      input.EncryptedKeyMaterial,
      (call) => service.privateKeyCall(call),
    );
  } catch (err) {
    if (err instanceof ImportUnwrapError)
      throw kmsError(
        "InvalidCiphertextException",
        `The EncryptedKeyMaterial could not be unwrapped; encrypt it with the PublicKey of the same GetParametersForImport response, using its WrappingAlgorithm (${parameters.wrappingAlgorithm}).`,
      );
    throw err;
  } finally {
    privateKey.fill(0);
  }
}

/**
 * Imports (or re-imports) key material: symmetric, HMAC, or an RSA/ECC private key. A key accepts one material for life:
 * re-importing anything else is IncorrectKeyMaterialException. The material goes in as
 * the key's one version, so ciphertext made before a deletion or expiry decrypts again.
 */
export const importKeyMaterial = defineOperation<
  WithRequired<ImportKeyMaterialRequest, "KeyId" | "ImportToken" | "EncryptedKeyMaterial">,
  ImportKeyMaterialResponse
>(async (ctx, input) => {
  const service = ctx.service;
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertImportable(key);
  importableSpec(key);
  const now = service.clock.now().getTime();
  const { model, validTo } = expiration(input, now);
  if (input.ImportType === "NEW_KEY_MATERIAL" && key.importedMaterialId !== undefined)
    throw kmsError(
      "UnsupportedOperationException",
      "Importing new key material for on-demand rotation is not supported by Keyhaven; re-import the key's existing material (ImportType EXISTING_KEY_MATERIAL).",
    );
  const unwrapped = await unwrapRequest(ctx, key, input, now);
  let material: Buffer = unwrapped;
  try {
    try {
      material = checkImportedMaterial(key.keySpec, unwrapped);
    } catch (err) {
      if (err instanceof ImportedMaterialError)
        throw kmsError("IncorrectKeyMaterialException", err.message);
      throw err;
    }
    const materialId = materialFingerprint(material);
    const notTheSame = () =>
      kmsError(
        "IncorrectKeyMaterialException",
        `The key material is not the material previously imported into ${key.arn}; a KMS key accepts only one key material for life.`,
      );
    if (input.KeyMaterialId !== undefined && !sameId(input.KeyMaterialId, materialId))
      throw notTheSame();
    if (key.importedMaterialId !== undefined && !sameId(key.importedMaterialId, materialId))
      throw notTheSame();
    const version = key.currentMaterialVersion;
    const wrapped = await service.wrapMaterial(key.keyId, version, material);
    const updated = await service.store.updateKeyWithMaterial(
      key.keyId,
      { keyId: key.keyId, version, createdAt: now, wrapped, materialId },
      (current) => {
        assertImportable(current);
        if (
          current.importedMaterialId !== undefined &&
          !sameId(current.importedMaterialId, materialId)
        )
          throw notTheSame();
        return {
          ...omit(current, "materialExpiresAt"),
          importedMaterialId: materialId,
          materialImported: true,
          expirationModel: model,
          ...(validTo !== undefined && { materialExpiresAt: validTo }),
          state: current.state === "PendingImport" ? "Enabled" : current.state,
        };
      },
    );
    if (!updated) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
    service.forgetMaterial(key.keyId);
    return { KeyId: key.arn, KeyMaterialId: materialId };
  } finally {
    unwrapped.fill(0);
    material.fill(0);
  }
});
