import type {
  DeleteImportedKeyMaterialRequest,
  DeleteImportedKeyMaterialResponse,
} from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { assertImportable } from "../keys/keyState.js";
import { withoutImportedMaterial } from "../lifecycle/actions.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/**
 * Destroys the imported material at once; the key becomes PendingImport and every
 * cryptographic operation fails until the same material is imported again.
 */
export const deleteImportedKeyMaterial = defineOperation<
  WithRequired<DeleteImportedKeyMaterialRequest, "KeyId">,
  DeleteImportedKeyMaterialResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertImportable(key);
  if (
    input.KeyMaterialId !== undefined &&
    (key.importedMaterialId === undefined || input.KeyMaterialId !== key.importedMaterialId)
  )
    throw kmsError(
      "NotFoundException",
      `Key material ${input.KeyMaterialId} is not associated with ${key.arn}.`,
    );
  const updated = await ctx.service.store.updateKeyRemovingMaterial(key.keyId, (current) => {
    assertImportable(current);
    return current.materialImported === true ? withoutImportedMaterial(current) : current;
  });
  ctx.service.forgetMaterial(key.keyId);
  if (!updated) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
  return {
    KeyId: key.arn,
    ...(key.importedMaterialId !== undefined && { KeyMaterialId: key.importedMaterialId }),
  };
});
