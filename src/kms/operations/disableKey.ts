import type { DisableKeyRequest } from "@aws-sdk/client-kms";
import { switchState } from "../keys/keyState.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./shared/updateKey.js";

export const disableKey = defineOperation<WithRequired<DisableKeyRequest, "KeyId">, object>(
  async (ctx, input) => {
    await updateKey(ctx, input.KeyId, switchState("Disabled"));
    return {};
  },
);
