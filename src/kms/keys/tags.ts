/** Tag rules of TagResource and CreateKey, with AWS's TagException messages. */
import type { Tag as SdkTag } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { LIMITS } from "../limits.js";
import type { Tag } from "./keyRecord.js";

export const MAX_TAGS_PER_KEY = LIMITS.tagsPerKey.limit;

export function checkNewTags(tags: readonly Tag[]): void {
  const seen = new Set<string>();
  for (const tag of tags) {
    if (tag.TagKey.startsWith("aws:"))
      throw kmsError("TagException", "Tags beginning with aws: are reserved");
    if (seen.has(tag.TagKey)) throw kmsError("TagException", "Duplicate tag keys");
    seen.add(tag.TagKey);
  }
}

/** Applies new tags over existing ones (same key: the value is replaced), keeping the limit. */
export function mergeTags(existing: readonly Tag[], added: readonly Tag[]): Tag[] {
  checkNewTags(added);
  const merged = new Map(existing.map((t) => [t.TagKey, t.TagValue]));
  for (const t of added) merged.set(t.TagKey, t.TagValue);
  if (merged.size > MAX_TAGS_PER_KEY)
    throw kmsError("TagException", `Too many tags: a key may have at most ${MAX_TAGS_PER_KEY}.`);
  return [...merged].map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
}

/** Tags as decoded from a request (the model guarantees both members are present). */
export const fromRequestTags = (tags: readonly SdkTag[] | undefined): Tag[] =>
  (tags ?? []).map((t) => ({ TagKey: t.TagKey!, TagValue: t.TagValue! }));
