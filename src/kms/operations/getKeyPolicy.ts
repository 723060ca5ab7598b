import type { GetKeyPolicyRequest, GetKeyPolicyResponse } from "@aws-sdk/client-kms";
import { checkPolicyName } from "../authz/keyPolicy.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

export const getKeyPolicy = defineOperation<
  WithRequired<GetKeyPolicyRequest, "KeyId">,
  GetKeyPolicyResponse
>(async (ctx, input) => {
  checkPolicyName(input.PolicyName);
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  return { Policy: key.policy, PolicyName: "default" };
});
