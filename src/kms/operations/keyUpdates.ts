/** Read-modify-write of a key named by id or ARN (management operations take no aliases). */
import { kmsError } from "../errors.js";
import { keyIdOf } from "../keys/resolveKey.js";
import type { KeyRecord } from "../store/keyStore.js";
import type { RequestContext } from "./operation.js";

export async function updateKey(
  ctx: RequestContext,
  keyIdParam: string,
  mutate: (key: KeyRecord) => KeyRecord,
): Promise<KeyRecord> {
  const keyId = keyIdOf(ctx.service, keyIdParam);
  const updated = await ctx.service.store.updateKey(keyId, mutate);
  if (!updated)
    throw kmsError("NotFoundException", `Key '${ctx.service.keyArn(keyId)}' does not exist`);
  ctx.resources.push(updated.arn);
  return updated;
}
