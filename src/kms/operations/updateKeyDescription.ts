import type { UpdateKeyDescriptionRequest } from "@aws-sdk/client-kms";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./shared/updateKey.js";

export const updateKeyDescription = defineOperation<
  WithRequired<UpdateKeyDescriptionRequest, "KeyId" | "Description">,
  object
>(async (ctx, input) => {
  await updateKey(ctx, input.KeyId, (key) => {
    assertNotPendingDeletion(key);
    return { ...key, description: input.Description };
  });
  return {};
});
