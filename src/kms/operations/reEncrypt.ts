import type { ReEncryptRequest, ReEncryptResponse } from "@aws-sdk/client-kms";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";
import { encryptionKey, openSymmetric, sealSymmetric } from "./symmetric.js";

export const reEncrypt = defineOperation<
  WithRequired<ReEncryptRequest, "CiphertextBlob" | "DestinationKeyId">,
  ReEncryptResponse
>(async (ctx, input) => {
  const destination = await encryptionKey(
    ctx,
    input.DestinationKeyId,
    "ReEncrypt",
    input.DestinationEncryptionAlgorithm,
    "kms:ReEncryptTo",
  );
  const { key: source, plaintext } = await openSymmetric(ctx, {
    blob: input.CiphertextBlob,
    context: input.SourceEncryptionContext,
    keyId: input.SourceKeyId,
    algorithm: input.SourceEncryptionAlgorithm,
    operation: "ReEncrypt",
    action: "kms:ReEncryptFrom",
    beforeDecrypt: () => dryRun(input),
  });
  try {
    return {
      CiphertextBlob: await sealSymmetric(
        ctx,
        destination,
        plaintext,
        input.DestinationEncryptionContext,
      ),
      SourceKeyId: source.arn,
      KeyId: destination.arn,
      SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    };
  } finally {
    plaintext.fill(0);
  }
});
