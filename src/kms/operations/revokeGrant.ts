import type { RevokeGrantRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { useKey } from "../access/useKey.js";
import { checkGrantId } from "./shared/grantRules.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";

/** RevokeGrant: needs kms:RevokeGrant on the key (key policy or caller policy). */
export const revokeGrant = defineOperation<
  WithRequired<RevokeGrantRequest, "KeyId" | "GrantId">,
  object
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  checkGrantId(input.GrantId);
  const grant = await ctx.service.store.getGrant(input.GrantId);
  if (!grant || grant.keyId !== key.keyId)
    throw kmsError("NotFoundException", `Grant ${input.GrantId} does not exist on ${key.arn}.`);
  dryRun(input);
  if (!(await ctx.service.store.deleteGrant(input.GrantId)))
    throw kmsError("NotFoundException", `Grant ${input.GrantId} does not exist on ${key.arn}.`);
  return {};
});
