import type { PutKeyPolicyRequest } from "@aws-sdk/client-kms";
import { checkPolicyDocument, checkPolicyName } from "../authz/keyPolicy.js";
import { kmsError } from "../errors.js";
import { checkPolicyLockout, useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

export const putKeyPolicy = defineOperation<
  WithRequired<PutKeyPolicyRequest, "KeyId" | "Policy">,
  object
>(async (ctx, input) => {
  checkPolicyName(input.PolicyName);
  checkPolicyDocument(input.Policy);
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  await checkPolicyLockout(ctx, input.Policy, key);
  const updated = await ctx.service.store.updateKey(key.keyId, (k) => ({
    ...k,
    policy: input.Policy,
  }));
  if (!updated) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
  return {};
});
