import type { EnableKeyRotationRequest } from "@aws-sdk/client-kms";
import { DAY_MS } from "../keys/dueDates.js";
import { updateKey } from "./shared/updateKey.js";
import { pushToReplicas } from "../peering/replication.js";
import { primaryOnly } from "../keys/rotationRules.js";
import { defineOperation, type WithRequired } from "./operation.js";
import {
  assertAutomaticRotationConfigurable,
  DEFAULT_ROTATION_PERIOD_DAYS,
} from "../keys/rotationRules.js";

/**
 * Turns automatic rotation on (the model bounds RotationPeriodInDays to 90..2560). The first
 * rotation is one period from now; changing the period of a key that already rotates moves
 * the next date to (last rotation or enable date) + new period, which may be due at once.
 */
export const enableKeyRotation = defineOperation<
  WithRequired<EnableKeyRotationRequest, "KeyId">,
  object
>(async (ctx, input) => {
  const period = input.RotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
  const now = ctx.service.clock.now().getTime();
  const updated = await updateKey(ctx, input.KeyId, (key) => {
    primaryOnly(ctx.service.region, key);
    assertAutomaticRotationConfigurable(key);
    const nextRotationAt =
      key.rotationEnabled && key.nextRotationAt !== undefined
        ? key.nextRotationAt -
          (key.rotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS) * DAY_MS +
          period * DAY_MS
        : now + period * DAY_MS;
    return { ...key, rotationEnabled: true, rotationPeriodInDays: period, nextRotationAt };
  });
  await pushToReplicas(ctx.service, updated);
  return {};
});
