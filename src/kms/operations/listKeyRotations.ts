import type {
  ListKeyRotationsRequest,
  ListKeyRotationsResponse,
  RotationsListEntry,
} from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import type { KeyMaterialRecord, KeyRecord } from "../keys/keyRecord.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";
import { materialIdOf, symmetricOnly } from "../keys/rotationRules.js";

function entry(key: KeyRecord, m: KeyMaterialRecord): RotationsListEntry {
  const imported = key.origin === "EXTERNAL";
  return {
    KeyId: key.arn,
    KeyMaterialId: materialIdOf(m),
    KeyMaterialState: m.version === key.currentMaterialVersion ? "CURRENT" : "NON_CURRENT",
    ...(m.rotationType !== undefined && {
      RotationDate: new Date(m.createdAt),
      RotationType: m.rotationType,
    }),
    ...(imported && {
      ImportState: "IMPORTED",
      ExpirationModel: key.expirationModel as RotationsListEntry["ExpirationModel"],
      ...(key.materialExpiresAt !== undefined && { ValidTo: new Date(key.materialExpiresAt) }),
    }),
  };
}

/**
 * The key's material versions, oldest first. ROTATIONS_ONLY (the default) leaves out the
 * first material; ALL_KEY_MATERIAL includes it, and for an imported key whose material is
 * gone shows it as PENDING_IMPORT.
 */
export const listKeyRotations = defineOperation<
  WithRequired<ListKeyRotationsRequest, "KeyId">,
  ListKeyRotationsResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  symmetricOnly(key);
  const all = input.IncludeKeyMaterial === "ALL_KEY_MATERIAL";
  const marker = decodeMarker(input.Marker);
  const after = marker === undefined ? 0 : Number(marker);
  if (!Number.isInteger(after) || after < 0)
    throw kmsError(
      "InvalidMarkerException",
      "The marker that specifies where pagination should next begin is not valid.",
    );
  const limit = input.Limit ?? 100;
  const rotations: RotationsListEntry[] = [];
  let next: string | undefined;
  if (key.origin === "EXTERNAL" && !key.materialImported) {
    if (all && after === 0 && key.importedMaterialId !== undefined)
      rotations.push({
        KeyId: key.arn,
        KeyMaterialId: key.importedMaterialId,
        KeyMaterialState: "CURRENT",
        ImportState: "PENDING_IMPORT",
      });
  } else {
    // ROTATIONS_ONLY skips version 1, so start after it.
    const page = await ctx.service.store.listMaterials(
      key.keyId,
      limit,
      all ? after : Math.max(after, 1),
    );
    rotations.push(...page.items.map((m) => entry(key, m)));
    next = page.next;
  }
  return { Rotations: rotations, ...pageEnd(next) };
});
