import type { ReEncryptRequest, ReEncryptResponse } from "@aws-sdk/client-kms";
import { defineOperation, dryRun, required, type WithRequired } from "./operation.js";
import { checkSealable, open, seal } from "./shared/encryption.js";
import { encryptionKey } from "./shared/encryptionKey.js";

export const reEncrypt = defineOperation<
  WithRequired<ReEncryptRequest, "DestinationKeyId">,
  ReEncryptResponse
>(async (ctx, input) => {
  const blob = required(input.CiphertextBlob, "ciphertextBlob");
  const destination = await encryptionKey(
    ctx,
    input.DestinationKeyId,
    "ReEncrypt",
    input.DestinationEncryptionAlgorithm,
    "kms:ReEncryptTo",
  );
  const {
    key: source,
    plaintext,
    algorithm,
  } = await open(ctx, {
    blob,
    context: input.SourceEncryptionContext,
    keyId: input.SourceKeyId,
    algorithm: input.SourceEncryptionAlgorithm,
    operation: "ReEncrypt",
    action: "kms:ReEncryptFrom",
    beforeDecrypt: () => dryRun(input),
  });
  try {
    checkSealable(
      destination,
      input.DestinationEncryptionAlgorithm,
      plaintext,
      input.DestinationEncryptionContext,
    );
    const sealed = await seal(
      ctx,
      destination,
      input.DestinationEncryptionAlgorithm,
      plaintext,
      input.DestinationEncryptionContext,
    );
    return {
      CiphertextBlob: sealed.blob,
      SourceKeyId: source.arn,
      KeyId: destination.arn,
      SourceEncryptionAlgorithm: algorithm as ReEncryptResponse["SourceEncryptionAlgorithm"],
      DestinationEncryptionAlgorithm:
        sealed.algorithm as ReEncryptResponse["DestinationEncryptionAlgorithm"],
    };
  } finally {
    plaintext.fill(0);
  }
});
