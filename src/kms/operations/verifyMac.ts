import type { VerifyMacRequest, VerifyMacResponse } from "@aws-sdk/client-kms";
import { macMatches } from "../crypto/hmac.js";
import { kmsError } from "../errors.js";
import { hmacKeyObject, macKey } from "./shared/macKey.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";

/** Compares in constant time; a mismatch is KMSInvalidMacException (empty message), never MacValid:false. */
export const verifyMac = defineOperation<
  WithRequired<VerifyMacRequest, "KeyId" | "Message" | "MacAlgorithm" | "Mac">,
  VerifyMacResponse
>(async (ctx, input) => {
  const { key, spec } = await macKey(ctx, input.KeyId, input.MacAlgorithm, "VerifyMac");
  dryRun(input);
  if (!macMatches(spec, await hmacKeyObject(ctx, key), input.Message, input.Mac))
    throw kmsError("KMSInvalidMacException");
  return { KeyId: key.arn, MacValid: true, MacAlgorithm: input.MacAlgorithm };
});
