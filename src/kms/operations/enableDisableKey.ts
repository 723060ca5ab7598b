import type { DisableKeyRequest, EnableKeyRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import type { KeyRecord, KeyState } from "../keys/keyRecord.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { updateKey } from "./keyUpdates.js";

/** EnableKey and DisableKey work on Enabled and Disabled keys only. */
function setState(state: "Enabled" | "Disabled") {
  return (key: KeyRecord): KeyRecord => {
    const refused: Partial<Record<KeyState, string>> = {
      PendingDeletion: "is pending deletion.",
      PendingImport: "is pending import.",
    };
    const why = refused[key.state];
    if (why) throw kmsError("KMSInvalidStateException", `${key.arn} ${why}`);
    return key.state === state ? key : { ...key, state };
  };
}

export const enableKey = defineOperation<WithRequired<EnableKeyRequest, "KeyId">, object>(
  async (ctx, input) => {
    await updateKey(ctx, input.KeyId, setState("Enabled"));
    return {};
  },
);

export const disableKey = defineOperation<WithRequired<DisableKeyRequest, "KeyId">, object>(
  async (ctx, input) => {
    await updateKey(ctx, input.KeyId, setState("Disabled"));
    return {};
  },
);
