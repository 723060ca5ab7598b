import type { VerifyRequest, VerifyResponse } from "@aws-sdk/client-kms";
import { verifyMessage } from "../crypto/signing.js";
import { kmsError } from "../errors.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { signingKey } from "./shared/signingKey.js";

/** A signature that does not verify is KMSInvalidSignatureException (empty message), never SignatureValid:false. */
export const verify = defineOperation<
  WithRequired<VerifyRequest, "KeyId" | "Message" | "Signature" | "SigningAlgorithm">,
  VerifyResponse
>(async (ctx, input) => {
  const { key, info, isDigest } = await signingKey(ctx, input, "Verify");
  dryRun(input);
  const valid = verifyMessage(
    info,
    await ctx.service.keyPair(key),
    Buffer.from(input.Message),
    isDigest,
    Buffer.from(input.Signature),
  );
  if (!valid) throw kmsError("KMSInvalidSignatureException");
  return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
});
