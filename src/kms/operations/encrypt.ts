import type { EncryptRequest, EncryptResponse } from "@aws-sdk/client-kms";
import { checkSealable, seal } from "./shared/encryption.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { encryptionKey } from "./shared/encryptionKey.js";

export const encrypt = defineOperation<
  WithRequired<EncryptRequest, "KeyId" | "Plaintext">,
  EncryptResponse
>(async (ctx, input) => {
  const key = await encryptionKey(ctx, input.KeyId, "Encrypt", input.EncryptionAlgorithm);
  checkSealable(key, input.EncryptionAlgorithm, input.Plaintext, input.EncryptionContext);
  dryRun(input);
  const sealed = await seal(
    ctx,
    key,
    input.EncryptionAlgorithm,
    input.Plaintext,
    input.EncryptionContext,
  );
  return {
    CiphertextBlob: sealed.blob,
    KeyId: key.arn,
    EncryptionAlgorithm: sealed.algorithm as EncryptResponse["EncryptionAlgorithm"],
  };
});
