import type { ReplicateKeyRequest, ReplicateKeyResponse } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { useKey } from "../access/useKey.js";
import { fromRequestTags } from "../keys/tags.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import {
  isPrimaryHere,
  pushToReplicas,
  reviveMetadata,
  syncReplica,
} from "../peering/replication.js";
import { defineOperation, type WithRequired } from "./operation.js";

/** ReplicateKey and UpdatePrimaryRegion act on a primary in this Region, not pending deletion. */
export function assertPrimaryHere(
  ctx: { service: Parameters<typeof isPrimaryHere>[0] },
  key: KeyRecord,
): void {
  if (!key.multiRegion)
    throw kmsError("UnsupportedOperationException", `${key.arn} is not a multi-Region key.`);
  if (!isPrimaryHere(ctx.service, key))
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} is a replica key; call this in the primary's Region (${key.multiRegion.primaryRegion}).`,
    );
  if (
    key.state === "PendingDeletion" ||
    key.state === "PendingReplicaDeletion" ||
    key.state === "Creating" ||
    key.state === "Updating"
  )
    throw kmsError("KMSInvalidStateException", `${key.arn} is ${key.state}.`);
}

/**
 * Makes a replica of a primary key in a peer's Region: the peer creates it (Creating) with
 * the shared properties and every material version, sealed for it; then the primary lists
 * it and settles it (Enabled, or PendingImport for EXTERNAL origin). A peer that does not
 * answer changes nothing here, and calling again finishes a replica left Creating.
 */
export const replicateKey = defineOperation<
  WithRequired<ReplicateKeyRequest, "KeyId" | "ReplicaRegion">,
  ReplicateKeyResponse
>(async (ctx, input) => {
  const service = ctx.service;
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertPrimaryHere(ctx, key);
  const region = input.ReplicaRegion;
  if (region === service.region)
    throw kmsError("ValidationException", `ReplicaRegion ${region} is the primary key's Region.`);
  if (!service.peers?.has(region))
    throw kmsError(
      "UnsupportedOperationException",
      `Region ${region} is not a peer of this Keyhaven instance; start it with --peer ${region}=URL.`,
    );
  const listed = key.multiRegion!.replicaRegions.includes(region);
  const family = {
    primaryRegion: service.region,
    replicaRegions: listed
      ? key.multiRegion!.replicaRegions
      : [...key.multiRegion!.replicaRegions, region],
  };
  // 1. The peer creates the replica (Creating); if it cannot be reached, nothing changed anywhere.
  await syncReplica(service, key, region, family, {
    Create: {
      Description: input.Description ?? "",
      ...(input.Policy !== undefined && { Policy: input.Policy }),
      Tags: fromRequestTags(input.Tags),
    },
  });
  // 2. The primary lists it; 3. the replica is settled (usable).
  const updated = await service.store.updateKey(key.keyId, (current) =>
    current.multiRegion && !current.multiRegion.replicaRegions.includes(region)
      ? {
          ...current,
          multiRegion: {
            ...current.multiRegion,
            replicaRegions: [...current.multiRegion.replicaRegions, region],
          },
        }
      : current,
  );
  if (!updated) throw kmsError("NotFoundException", `Key '${key.arn}' does not exist`);
  const settled = await syncReplica(service, updated, region, updated.multiRegion!, {
    Settle: true,
  });
  // The other replicas learn the new member of the family.
  await pushToReplicas(service, updated, [region]);
  ctx.resources.push(key.arn);
  return {
    ReplicaKeyMetadata: reviveMetadata(settled["KeyMetadata"]),
    ReplicaPolicy: settled["Policy"] as string,
    ReplicaTags: settled["Tags"] as ReplicateKeyResponse["ReplicaTags"],
  };
});
