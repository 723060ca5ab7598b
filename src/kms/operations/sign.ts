import type { SignRequest, SignResponse } from "@aws-sdk/client-kms";
import { signingCall, signMessage } from "../crypto/signing.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { signingKey } from "./shared/signingKey.js";

export const sign = defineOperation<
  WithRequired<SignRequest, "KeyId" | "Message" | "SigningAlgorithm">,
  SignResponse
>(async (ctx, input) => {
  const { key, info, isDigest } = await signingKey(ctx, input, "Sign");
  dryRun(input);
  const { privateKey } = await ctx.service.keyPair(key);
  const message = Buffer.from(input.Message);
  const call = signingCall(info, privateKey, message, isDigest);
  return {
    KeyId: key.arn,
    Signature: call
      ? (await ctx.service.privateKeyCall(call))!
      : signMessage(info, privateKey, message, isDigest),
    SigningAlgorithm: input.SigningAlgorithm,
  };
});
