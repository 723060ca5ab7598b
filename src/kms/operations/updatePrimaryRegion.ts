import type { UpdatePrimaryRegionRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { useKey } from "../access/useKey.js";
import { omit } from "../lifecycle/omit.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { syncReplica } from "../peering/replication.js";
import { assertPrimaryHere } from "./replicateKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/**
 * Moves the primary to one of its replicas, called in the current primary's Region. This
 * key is Updating while the new primary takes over (it receives the family and the
 * rotation schedule); then this key becomes a replica. If the new primary's instance does
 * not answer, this key returns to its state and nothing moved.
 */
export const updatePrimaryRegion = defineOperation<
  WithRequired<UpdatePrimaryRegionRequest, "KeyId" | "PrimaryRegion">,
  object
>(async (ctx, input) => {
  const service = ctx.service;
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertPrimaryHere(ctx, key);
  const target = input.PrimaryRegion;
  if (!key.multiRegion!.replicaRegions.includes(target))
    throw kmsError("NotFoundException", `There is no replica of ${key.arn} in Region ${target}.`);
  const family = {
    primaryRegion: target,
    replicaRegions: [
      service.region,
      ...key.multiRegion!.replicaRegions.filter((r) => r !== target),
    ],
  };
  const updating = await service.store.updateKey(key.keyId, (current) => {
    assertPrimaryHere(ctx, current);
    return { ...current, state: "Updating", settledState: current.state };
  });
  if (!updating) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
  const settle = (current: KeyRecord, moved: boolean): KeyRecord => {
    const back = { ...omit(current, "settledState"), state: current.settledState ?? "Enabled" };
    return moved ? { ...omit(back, "nextRotationAt"), multiRegion: family } : back;
  };
  try {
    await syncReplica(service, updating, target, family);
  } catch (err) {
    await service.store.updateKey(key.keyId, (current) => settle(current, false));
    throw err;
  }
  const moved = await service.store.updateKey(key.keyId, (current) => settle(current, true));
  // The other replicas learn the new primary from this instance (it holds the same state).
  if (moved) await pushToReplicasAs(moved, target);
  ctx.resources.push(key.arn);
  return {};

  async function pushToReplicasAs(record: KeyRecord, newPrimary: string): Promise<void> {
    for (const region of family.replicaRegions)
      if (region !== service.region && region !== newPrimary)
        await syncReplica(service, record, region, family).catch(() => undefined);
  }
});
