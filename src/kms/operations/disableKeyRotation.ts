import type { DisableKeyRotationRequest } from "@aws-sdk/client-kms";
import { omit } from "../lifecycle/omit.js";
import { updateKey } from "./keyUpdates.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { assertAutomaticRotationConfigurable } from "./rotationRules.js";

export const disableKeyRotation = defineOperation<
  WithRequired<DisableKeyRotationRequest, "KeyId">,
  object
>(async (ctx, input) => {
  await updateKey(ctx, input.KeyId, (key) => {
    assertAutomaticRotationConfigurable(key);
    return { ...omit(key, "nextRotationAt"), rotationEnabled: false };
  });
  return {};
});
