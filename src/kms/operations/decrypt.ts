import type { DecryptRequest, DecryptResponse } from "@aws-sdk/client-kms";
import { defineOperation, dryRun, required, unsupportedRecipient } from "./operation.js";
import { open } from "./shared/encryption.js";

export const decrypt = defineOperation<DecryptRequest, DecryptResponse>(async (ctx, input) => {
  const blob = required(input.CiphertextBlob, "ciphertextBlob");
  unsupportedRecipient(input);
  const { key, plaintext, algorithm } = await open(ctx, {
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
