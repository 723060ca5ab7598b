import type { ListKeyPoliciesRequest, ListKeyPoliciesResponse } from "@aws-sdk/client-kms";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/** A key has exactly one policy, named "default". */
export const listKeyPolicies = defineOperation<
  WithRequired<ListKeyPoliciesRequest, "KeyId">,
  ListKeyPoliciesResponse
>(async (ctx, input) => {
  await useKey(ctx, input.KeyId, { aliases: false });
  return { PolicyNames: ["default"], Truncated: false };
});
