/** Shared rules of the rotation operations: which keys rotate, and AWS's errors for the rest. */
import { createHash } from "node:crypto";
import { kmsError } from "../errors.js";
import { isSymmetric } from "./keySpecs.js";
import { assertNotPendingDeletion, originNotValid } from "./keyState.js";
import type { KeyMaterialRecord, KeyRecord } from "./keyRecord.js";

/** AWS's quota of RotateKeyOnDemand calls per key (developer guide, "Perform on-demand key rotation"). */
export const ON_DEMAND_ROTATION_LIMIT = 25;
export const DEFAULT_ROTATION_PERIOD_DAYS = 365;

export function symmetricOnly(key: KeyRecord): void {
  if (!isSymmetric(key.keySpec))
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} has key spec ${key.keySpec}; key rotation is supported only for symmetric encryption keys (SYMMETRIC_DEFAULT).`,
    );
}

/** Rotation of a multi-Region key is set on its primary; replicas follow it (docs/multi-region.md). */
export function primaryOnly(region: string, key: KeyRecord): void {
  if (key.multiRegion !== undefined && key.multiRegion.primaryRegion !== region)
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} is a multi-Region replica key; rotate and configure rotation on its primary in ${key.multiRegion.primaryRegion}.`,
    );
}

/**
 * Enable/DisableKeyRotation: the key-state table allows only Enabled keys of origin
 * AWS_KMS with the symmetric spec; footnotes [3], [6] and [1], in that order.
 */
export function assertAutomaticRotationConfigurable(key: KeyRecord): void {
  assertNotPendingDeletion(key);
  if (key.origin !== "AWS_KMS") throw originNotValid(key);
  symmetricOnly(key);
  if (key.state === "Disabled") throw kmsError("DisabledException", `${key.arn} is disabled.`);
}

/** KeyMaterialId of a version: its stored id, or a stable non-secret one derived from key id and version. */
export const materialIdOf = (m: Pick<KeyMaterialRecord, "keyId" | "version" | "materialId">) =>
  m.materialId ??
  createHash("sha256").update(`keyhaven/material-id|${m.keyId}|${m.version}`).digest("hex");
