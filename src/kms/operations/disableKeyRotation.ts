import type { DisableKeyRotationRequest } from "@aws-sdk/client-kms";
import { omit } from "../lifecycle/omit.js";
import { updateKey } from "./shared/updateKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { assertAutomaticRotationConfigurable } from "../keys/rotationRules.js";

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
