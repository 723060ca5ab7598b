import type { EnableKeyRequest } from "@aws-sdk/client-kms";
import { switchState } from "../keys/keyState.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./shared/updateKey.js";

export const enableKey = defineOperation<WithRequired<EnableKeyRequest, "KeyId">, object>(
  async (ctx, input) => {
    await updateKey(ctx, input.KeyId, switchState("Enabled"));
    return {};
  },
);
