import type { GenerateRandomRequest, GenerateRandomResponse } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, unsupportedRecipient } from "./operation.js";

export const generateRandom = defineOperation<GenerateRandomRequest, GenerateRandomResponse>(
  async (ctx, input) => {
    unsupportedRecipient(input);
    if (input.CustomKeyStoreId !== undefined) {
      throw kmsError(
        "UnsupportedOperationException",
        "Custom key stores are not supported by Keyhaven; omit CustomKeyStoreId.",
      );
    }
    await authorizeAction(ctx);
    if (input.NumberOfBytes === undefined)
      throw kmsError("ValidationException", "NumberOfBytes is required.");
    return { Plaintext: ctx.service.random(input.NumberOfBytes) };
  },
);
