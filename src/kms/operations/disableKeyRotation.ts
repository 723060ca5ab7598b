import type { DisableKeyRotationRequest } from "@aws-sdk/client-kms";
import { omit } from "../lifecycle/omit.js";
import { updateKey } from "./shared/updateKey.js";
import { pushToReplicas } from "../peering/replication.js";
import { primaryOnly } from "../keys/rotationRules.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { assertAutomaticRotationConfigurable } from "../keys/rotationRules.js";

export const disableKeyRotation = defineOperation<
  WithRequired<DisableKeyRotationRequest, "KeyId">,
  object
>(async (ctx, input) => {
  const updated = await updateKey(ctx, input.KeyId, (key) => {
    primaryOnly(ctx.service.region, key);
    assertAutomaticRotationConfigurable(key);
    return { ...omit(key, "nextRotationAt"), rotationEnabled: false };
  });
  await pushToReplicas(ctx.service, updated);
  return {};
});
