import type { EncryptRequest, EncryptResponse } from "@aws-sdk/client-kms";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { encryptionKey, sealSymmetric } from "./symmetric.js";

export const encrypt = defineOperation<
  WithRequired<EncryptRequest, "KeyId" | "Plaintext">,
  EncryptResponse
>(async (ctx, input) => {
  const key = await encryptionKey(ctx, input.KeyId, "Encrypt", input.EncryptionAlgorithm);
  dryRun(input);
  return {
    CiphertextBlob: await sealSymmetric(ctx, key, input.Plaintext, input.EncryptionContext),
    KeyId: key.arn,
    EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
  };
});
