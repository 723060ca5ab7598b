import type { DescribeKeyRequest, DescribeKeyResponse } from "@aws-sdk/client-kms";
import { keyMetadata } from "../keys/keyMetadata.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

export const describeKey = defineOperation<
  WithRequired<DescribeKeyRequest, "KeyId">,
  DescribeKeyResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: true });
  return { KeyMetadata: keyMetadata(ctx.service, key) };
});
