import type {
  GetKeyRotationStatusRequest,
  GetKeyRotationStatusResponse,
} from "@aws-sdk/client-kms";
import { isSymmetric } from "../keys/keySpecs.js";
import { originNotValid } from "../keys/keyState.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/**
 * Rotation status. Keys that cannot rotate automatically (other specs, imported
 * material) report false; a key pending deletion reports false but keeps its
 * setting, which CancelKeyDeletion restores. PendingImport is footnote [6].
 * Rotations run synchronously here, so OnDemandRotationStartDate never appears.
 */
export const getKeyRotationStatus = defineOperation<
  WithRequired<GetKeyRotationStatusRequest, "KeyId">,
  GetKeyRotationStatusResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  if (key.state === "PendingImport") throw originNotValid(key);
  const enabled =
    key.rotationEnabled === true &&
    key.origin === "AWS_KMS" &&
    isSymmetric(key.keySpec) &&
    key.state !== "PendingDeletion";
  return {
    KeyId: key.arn,
    KeyRotationEnabled: enabled,
    ...(enabled && {
      RotationPeriodInDays: key.rotationPeriodInDays,
      ...(key.nextRotationAt !== undefined && { NextRotationDate: new Date(key.nextRotationAt) }),
    }),
  };
});
