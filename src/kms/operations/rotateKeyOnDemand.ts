import type { RotateKeyOnDemandRequest, RotateKeyOnDemandResponse } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { assertUsable } from "../keys/keyState.js";
import { rotateKeyMaterial } from "../lifecycle/actions.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { ON_DEMAND_ROTATION_LIMIT, primaryOnly, symmetricOnly } from "../keys/rotationRules.js";

function assertRotatableOnDemand(key: KeyRecord): void {
  assertUsable(key);
  symmetricOnly(key);
  if (key.origin === "AWS_CLOUDHSM")
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} is in a custom key store; keys in custom key stores do not rotate.`,
    );
  if (key.origin === "EXTERNAL")
    throw kmsError(
      "KMSInvalidStateException",
      `No available key material pending rotation for the key: ${key.arn}.`,
    );
  if ((key.onDemandRotations ?? 0) >= ON_DEMAND_ROTATION_LIMIT)
    throw kmsError(
      "LimitExceededException",
      `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${key.arn}`,
    );
}

/**
 * Rotates now, whatever the automatic schedule says (which it leaves alone). The new
 * version is current when the call returns; the checks repeat inside the write, so two
 * concurrent calls can never exceed the limit.
 */
export const rotateKeyOnDemand = defineOperation<
  WithRequired<RotateKeyOnDemandRequest, "KeyId">,
  RotateKeyOnDemandResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  primaryOnly(ctx.service.region, key);
  assertRotatableOnDemand(key);
  const rotated = await rotateKeyMaterial(ctx.service, key.keyId, "ON_DEMAND", (current) =>
    assertRotatableOnDemand(current),
  );
  if (!rotated) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
  // AWS answers with the key id, not the ARN (API reference example, CloudTrail's responseElements).
  return { KeyId: key.keyId };
});
