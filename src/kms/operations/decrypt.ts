import type { DecryptRequest, DecryptResponse } from "@aws-sdk/client-kms";
import { defineOperation, dryRun, required } from "./operation.js";
import { openFor } from "./asymmetricEncryption.js";
import { unsupportedRecipient } from "./symmetric.js";

export const decrypt = defineOperation<DecryptRequest, DecryptResponse>(async (ctx, input) => {
  const blob = required(input.CiphertextBlob, "ciphertextBlob");
  unsupportedRecipient(input);
  const { key, plaintext, algorithm } = await openFor(ctx, {
    blob,
    context: input.EncryptionContext,
    keyId: input.KeyId,
    algorithm: input.EncryptionAlgorithm,
    operation: "Decrypt",
    beforeDecrypt: () => dryRun(input),
  });
  return {
    KeyId: key.arn,
    Plaintext: plaintext,
    EncryptionAlgorithm: algorithm as DecryptResponse["EncryptionAlgorithm"],
  };
});
