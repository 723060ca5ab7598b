import type { SignRequest, SignResponse } from "@aws-sdk/client-kms";
import { signMessage } from "../crypto/signing.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { signingKey } from "./shared/signingKey.js";

export const sign = defineOperation<
  WithRequired<SignRequest, "KeyId" | "Message" | "SigningAlgorithm">,
  SignResponse
>(async (ctx, input) => {
  const { key, info, isDigest } = await signingKey(ctx, input, "Sign");
  dryRun(input);
  const { privateKey } = await ctx.service.keyPair(key);
  return {
    KeyId: key.arn,
    Signature: signMessage(info, privateKey, Buffer.from(input.Message), isDigest),
    SigningAlgorithm: input.SigningAlgorithm,
  };
});
