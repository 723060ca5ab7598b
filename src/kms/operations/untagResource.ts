import type { UntagResourceRequest } from "@aws-sdk/client-kms";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./shared/updateKey.js";

export const untagResource = defineOperation<
  WithRequired<UntagResourceRequest, "KeyId" | "TagKeys">,
  object
>(async (ctx, input) => {
  const removed = new Set(input.TagKeys);
  await updateKey(ctx, input.KeyId, (key) => {
    assertNotPendingDeletion(key);
    return { ...key, tags: key.tags.filter((t) => !removed.has(t.TagKey)) };
  });
  return {};
});
