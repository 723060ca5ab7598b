import type { TagResourceRequest } from "@aws-sdk/client-kms";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { fromRequestTags, mergeTags } from "../keys/tags.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./shared/updateKey.js";

export const tagResource = defineOperation<
  WithRequired<TagResourceRequest, "KeyId" | "Tags">,
  object
>(async (ctx, input) => {
  const tags = fromRequestTags(input.Tags);
  await updateKey(ctx, input.KeyId, (key) => {
    assertNotPendingDeletion(key);
    return { ...key, tags: mergeTags(key.tags, tags) };
  });
  return {};
});
