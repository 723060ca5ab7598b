import type { ReplicateKeyRequest, ReplicateKeyResponse } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { authorizeAction, useKey } from "../access/useKey.js";
import { fromRequestTags } from "../keys/tags.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import {
  isPrimaryHere,
  pushToReplicas,
  reviveMetadata,
  syncReplica,
} from "../peering/replication.js";
import { defineOperation, type WithRequired } from "./operation.js";
import type { RequestContext } from "../request.js";

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
  const elsewhere = PEER_KEY_ARN.exec(input.KeyId);
  if (elsewhere && elsewhere[1] !== service.region)
    return pullReplica(ctx, input, elsewhere[1]!, elsewhere[3]!);
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

/** The ARN of a multi-Region key in some Region: [, region, account, keyId]. */
const PEER_KEY_ARN = /^arn:aws:kms:([a-z]+(?:-[a-z]+){1,2}-\d+):(\d{12}):key\/(mrk-[0-9a-f]{32})$/;

/**
 * ReplicateKey with the ARN of a primary in a peer's Region and this Region as the replica
 * Region: this instance asks the primary's instance (as its peering principal) to replicate
 * the key here, as if the caller had called ReplicateKey in the primary's Region. This is how
 * a cluster declares a replica of a primary that lives in another (KmsKey spec.replicaOf).
 * The caller needs kms:ReplicateKey and kms:CreateKey here; the primary's instance
 * authorizes the peering principal on its key as for any ReplicateKey.
 */
async function pullReplica(
  ctx: RequestContext,
  input: WithRequired<ReplicateKeyRequest, "KeyId" | "ReplicaRegion">,
  primaryRegion: string,
  keyId: string,
): Promise<ReplicateKeyResponse> {
  const service = ctx.service;
  if (input.ReplicaRegion !== service.region)
    throw kmsError(
      "UnsupportedOperationException",
      `${input.KeyId} is in Region ${primaryRegion}: call ReplicateKey there, or here with ReplicaRegion ${service.region} to replicate it to this Region.`,
    );
  if (!service.peers?.has(primaryRegion))
    throw kmsError(
      "UnsupportedOperationException",
      `Region ${primaryRegion} is not a peer of this Keyhaven instance; start it with --peer ${primaryRegion}=URL.`,
    );
  await authorizeAction(ctx, "kms:ReplicateKey");
  await authorizeAction(ctx, "kms:CreateKey");
  const reply = await service.peers.call(primaryRegion, "ReplicateKey", {
    KeyId: keyId,
    ReplicaRegion: service.region,
    ...(input.Description !== undefined && { Description: input.Description }),
    ...(input.Policy !== undefined && { Policy: input.Policy }),
    ...(input.BypassPolicyLockoutSafetyCheck !== undefined && {
      BypassPolicyLockoutSafetyCheck: input.BypassPolicyLockoutSafetyCheck,
    }),
    ...(input.Tags !== undefined && { Tags: input.Tags }),
  });
  ctx.resources.push(service.keyArn(keyId));
  return {
    ReplicaKeyMetadata: reviveMetadata(reply["ReplicaKeyMetadata"]),
    ReplicaPolicy: reply["ReplicaPolicy"] as string,
    ReplicaTags: reply["ReplicaTags"] as ReplicateKeyResponse["ReplicaTags"],
  };
}
