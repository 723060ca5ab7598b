/** TagResource, UntagResource and ListResourceTags. */
import type {
  ListResourceTagsRequest,
  ListResourceTagsResponse,
  TagResourceRequest,
  UntagResourceRequest,
} from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { useKey } from "../access/useKey.js";
import { fromRequestTags, mergeTags } from "../keys/tags.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./keyUpdates.js";
import { decodeMarker, encodeMarker } from "./pagination.js";

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

export const listResourceTags = defineOperation<
  WithRequired<ListResourceTagsRequest, "KeyId">,
  ListResourceTagsResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  const start = Number(decodeMarker(input.Marker) ?? "0");
  if (!Number.isInteger(start) || start < 0 || start > key.tags.length) {
    throw kmsError(
      "InvalidMarkerException",
      "The marker that specifies where pagination should next begin is not valid.",
    );
  }
  const limit = Math.min(input.Limit ?? 50, 50);
  const tags = key.tags.slice(start, start + limit);
  const next = start + limit < key.tags.length ? start + limit : undefined;
  return next === undefined
    ? { Tags: tags, Truncated: false }
    : { Tags: tags, Truncated: true, NextMarker: encodeMarker(String(next)) };
});
