/** GetKeyPolicy, PutKeyPolicy and ListKeyPolicies. A key has exactly one policy, named "default". */
import type {
  GetKeyPolicyRequest,
  GetKeyPolicyResponse,
  ListKeyPoliciesRequest,
  ListKeyPoliciesResponse,
  PutKeyPolicyRequest,
} from "@aws-sdk/client-kms";
import { checkPolicyDocument } from "../authz/keyPolicy.js";
import { kmsError } from "../errors.js";
import { checkPolicyLockout, useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

function checkPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== "default") {
    throw kmsError(
      "NotFoundException",
      `No such policy: '${name}'. A KMS key has one key policy, named 'default'.`,
    );
  }
}

export const getKeyPolicy = defineOperation<
  WithRequired<GetKeyPolicyRequest, "KeyId">,
  GetKeyPolicyResponse
>(async (ctx, input) => {
  checkPolicyName(input.PolicyName);
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  return { Policy: key.policy, PolicyName: "default" };
});

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

export const listKeyPolicies = defineOperation<
  WithRequired<ListKeyPoliciesRequest, "KeyId">,
  ListKeyPoliciesResponse
>(async (ctx, input) => {
  await useKey(ctx, input.KeyId, { aliases: false });
  return { PolicyNames: ["default"], Truncated: false };
});
