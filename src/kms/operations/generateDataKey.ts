import type {
  GenerateDataKeyRequest,
  GenerateDataKeyResponse,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateDataKeyWithoutPlaintextResponse,
} from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { defineOperation, dryRun, type WithRequired, unsupportedRecipient } from "./operation.js";
import type { RequestContext } from "../request.js";
import { sealSymmetric } from "./shared/symmetricEncryption.js";
import { encryptionKey } from "./shared/encryptionKey.js";

const DATA_KEY_BYTES = { AES_256: 32, AES_128: 16 } as const;

async function dataKey(
  ctx: RequestContext,
  input: WithRequired<GenerateDataKeyRequest, "KeyId">,
  operation: string,
) {
  if ((input.KeySpec === undefined) === (input.NumberOfBytes === undefined)) {
    throw kmsError("ValidationException", "Please specify either number of bytes or key spec.");
  }
  const key = await encryptionKey(ctx, input.KeyId, operation, undefined);
  dryRun(input);
  const plaintext = ctx.service.random(input.NumberOfBytes ?? DATA_KEY_BYTES[input.KeySpec!]);
  const ciphertext = await sealSymmetric(ctx, key, plaintext, input.EncryptionContext);
  return { key, plaintext, ciphertext };
}

export const generateDataKey = defineOperation<
  WithRequired<GenerateDataKeyRequest, "KeyId">,
  GenerateDataKeyResponse
>(async (ctx, input) => {
  unsupportedRecipient(input);
  const { key, plaintext, ciphertext } = await dataKey(ctx, input, "GenerateDataKey");
  return { CiphertextBlob: ciphertext, Plaintext: plaintext, KeyId: key.arn };
});

export const generateDataKeyWithoutPlaintext = defineOperation<
  WithRequired<GenerateDataKeyWithoutPlaintextRequest, "KeyId">,
  GenerateDataKeyWithoutPlaintextResponse
>(async (ctx, input) => {
  const { key, plaintext, ciphertext } = await dataKey(
    ctx,
    input,
    "GenerateDataKeyWithoutPlaintext",
  );
  plaintext.fill(0);
  return { CiphertextBlob: ciphertext, KeyId: key.arn };
});
