import type { DescribeKeyRequest, DescribeKeyResponse } from "@aws-sdk/client-kms";
import { keyMetadata } from "../keys/keyMetadata.js";
import { resolveKey } from "../keys/resolveKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

export const describeKey = defineOperation<
  WithRequired<DescribeKeyRequest, "KeyId">,
  DescribeKeyResponse
>(async (ctx, input) => {
  const key = await resolveKey(ctx.service, input.KeyId, { aliases: true });
  ctx.resources.push(key.arn);
  return { KeyMetadata: keyMetadata(ctx.service, key) };
});
