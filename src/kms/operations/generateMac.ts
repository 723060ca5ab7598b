import type { GenerateMacRequest, GenerateMacResponse } from "@aws-sdk/client-kms";
import { computeMac } from "../crypto/hmac.js";
import { hmacKeyObject, macKey } from "./shared/macKey.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";

export const generateMac = defineOperation<
  WithRequired<GenerateMacRequest, "KeyId" | "Message" | "MacAlgorithm">,
  GenerateMacResponse
>(async (ctx, input) => {
  const { key, spec } = await macKey(ctx, input.KeyId, input.MacAlgorithm, "GenerateMac");
  dryRun(input);
  return {
    Mac: computeMac(spec, await hmacKeyObject(ctx, key), input.Message),
    MacAlgorithm: input.MacAlgorithm,
    KeyId: key.arn,
  };
});
