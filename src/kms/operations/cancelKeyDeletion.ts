import type { CancelKeyDeletionRequest, CancelKeyDeletionResponse } from "@aws-sdk/client-kms";
import { assertPendingDeletion } from "../keys/keyState.js";
import { omit } from "../lifecycle/omit.js";
import { updateKey } from "./shared/updateKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/**
 * Ends the waiting period. The key comes back Disabled (as in AWS), or PendingImport if
 * it is an imported key whose material was deleted or expired in the meantime.
 */
export const cancelKeyDeletion = defineOperation<
  WithRequired<CancelKeyDeletionRequest, "KeyId">,
  CancelKeyDeletionResponse
>(async (ctx, input) => {
  const key = await updateKey(ctx, input.KeyId, (current) => {
    assertPendingDeletion(current);
    const withoutMaterial = current.origin === "EXTERNAL" && current.materialImported !== true;
    return {
      ...omit(current, "deletionDate", "pendingWindowInDays"),
      state: withoutMaterial ? "PendingImport" : "Disabled",
    };
  });
  return { KeyId: key.arn };
});
