/** Read-modify-write of a key named by id or ARN (management operations take no aliases). */
import { kmsError } from "../../errors.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";

export async function updateKey(
  ctx: RequestContext,
  keyIdParam: string,
  mutate: (key: KeyRecord) => KeyRecord,
): Promise<KeyRecord> {
  const current = await useKey(ctx, keyIdParam, { aliases: false });
  const updated = await ctx.service.store.updateKey(current.keyId, mutate);
  if (!updated) throw kmsError("NotFoundException", `Key '${current.arn}' does not exist`);
  return updated;
}
