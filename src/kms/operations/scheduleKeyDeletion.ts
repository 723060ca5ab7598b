import type { ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse } from "@aws-sdk/client-kms";
import { validationError } from "../errors.js";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { DAY_MS } from "../keys/dueDates.js";
import { updateKey } from "./shared/updateKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

const MIN_WINDOW = 7;
const MAX_WINDOW = 30;

/**
 * Starts the waiting period. The model allows 1..365 days but AWS accepts 7..30, so the
 * range is checked here. At the deletion date the lifecycle loop destroys the key, its
 * material and its aliases; until then CancelKeyDeletion undoes it.
 */
export const scheduleKeyDeletion = defineOperation<
  WithRequired<ScheduleKeyDeletionRequest, "KeyId">,
  ScheduleKeyDeletionResponse
>(async (ctx, input) => {
  const days = input.PendingWindowInDays ?? MAX_WINDOW;
  if (days < MIN_WINDOW || days > MAX_WINDOW) {
    throw validationError([
      `Value '${days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value ${days < MIN_WINDOW ? `greater than or equal to ${MIN_WINDOW}` : `less than or equal to ${MAX_WINDOW}`}`,
    ]);
  }
  const deletionDate = ctx.service.clock.now().getTime() + days * DAY_MS;
  const key = await updateKey(ctx, input.KeyId, (current) => {
    assertNotPendingDeletion(current);
    // AWS: a multi-Region primary with replicas waits in PendingReplicaDeletion; its own
    // waiting period starts when the last replica is deleted.
    if (
      current.multiRegion?.primaryRegion === ctx.service.region &&
      current.multiRegion.replicaRegions.length > 0
    )
      return { ...current, state: "PendingReplicaDeletion", pendingWindowInDays: days };
    return { ...current, state: "PendingDeletion", deletionDate, pendingWindowInDays: days };
  });
  if (key.state === "PendingReplicaDeletion")
    return { KeyId: key.arn, KeyState: "PendingReplicaDeletion", PendingWindowInDays: days };
  return {
    KeyId: key.arn,
    DeletionDate: new Date(deletionDate),
    KeyState: "PendingDeletion",
    PendingWindowInDays: days,
  };
});
