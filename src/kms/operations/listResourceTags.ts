import type { ListResourceTagsRequest, ListResourceTagsResponse } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { decodeMarker, encodeMarker } from "./shared/pagination.js";

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
