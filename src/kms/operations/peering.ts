/**
 * The calls Keyhaven instances make to each other for multi-Region keys (docs/multi-region.md).
 * They arrive as ordinary SigV4-signed KMS requests and are authorized like any request:
 * the peering principal needs kms:ReplicateKey (and kms:CreateKey to create a replica,
 * kms:UpdatePrimaryRegion to make this instance's key the primary), by caller policy and,
 * for an existing key, by its key policy. They are not in AWS's model: each validates its
 * own input here.
 */
import { z } from "zod";
import { kmsError } from "../errors.js";
import { keyMetadata } from "../keys/keyMetadata.js";
import { defaultKeyPolicy, checkPolicyDocument } from "../authz/keyPolicy.js";
import { mergeTags } from "../keys/tags.js";
import { authorizeAction, authorizeKey, checkPolicyLockout } from "../access/useKey.js";
import { applySync, MRK_ID, syncInput } from "../peering/replication.js";
import { peeringKeyProof } from "../peering/peerClient.js";
import { omit } from "../lifecycle/omit.js";
import { DAY_MS } from "../keys/dueDates.js";
import type { RequestContext } from "../request.js";
import type { OperationHandler } from "./operation.js";

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success)
    throw kmsError(
      "ValidationException",
      `1 validation error detected: ${parsed.error.issues[0]!.path.join(".")}: ${parsed.error.issues[0]!.message}`,
    );
  return parsed.data;
}

/**
 * This instance's peering public key (SPKI DER, base64): what peers seal material to. The
 * answer carries a proof (peeringKeyProof) under the caller's own SigV4 signing key, so the
 * caller knows the key comes from an instance holding its peering credential, not from
 * whoever is on the path.
 */
export const keyhavenGetPeeringKey: OperationHandler = async (ctx) => {
  await authorizeAction(ctx, "kms:ReplicateKey");
  if (!ctx.service.peeringKey || !ctx.proveToSigner)
    throw kmsError("UnsupportedOperationException", "Peering is not configured here.");
  const publicKey = ctx.service.peeringKey.publicKeyDer.toString("base64");
  return {
    PublicKey: publicKey,
    Proof: ctx.proveToSigner(peeringKeyProof(ctx.service.region, publicKey)),
  };
};

/** A primary's sync (peering/replication.ts): creates or updates the replica here. */
export const keyhavenSyncReplica: OperationHandler = async (ctx, raw) => {
  const input = parse(syncInput, raw);
  const service = ctx.service;
  const existing = await service.store.getKey(input.KeyId);
  if (existing) {
    await authorizeKey(
      ctx,
      existing,
      input.PrimaryRegion === service.region &&
        existing.multiRegion?.primaryRegion !== service.region
        ? "kms:UpdatePrimaryRegion"
        : "kms:ReplicateKey",
    );
  } else {
    await authorizeAction(ctx, "kms:ReplicateKey");
    await authorizeAction(ctx, "kms:CreateKey");
  }
  let withPolicy = input;
  if (input.Create && !existing) {
    const policy = input.Create.Policy ?? defaultKeyPolicy(service.account);
    checkPolicyDocument(policy);
    mergeTags([], input.Create.Tags);
    if (input.Create.Policy !== undefined)
      await checkPolicyLockout(ctx, policy, {
        keyId: input.KeyId,
        arn: service.keyArn(input.KeyId),
      });
    withPolicy = { ...input, Create: { ...input.Create, Policy: policy } };
  }
  const key = await applySync(service, withPolicy, existing, service.clock.now().getTime());
  ctx.resources.push(key.arn);
  return {
    KeyMetadata: keyMetadata(service, key),
    Policy: key.policy,
    Tags: key.tags,
  };
};

const replicaDeleted = z.object({ KeyId: z.string().regex(MRK_ID), Region: z.string().max(64) });

/**
 * A replica's instance tells the primary's that the replica is gone for good; a primary
 * waiting in PendingReplicaDeletion starts its own waiting period after the last one.
 */
export const keyhavenReplicaDeleted: OperationHandler = async (ctx: RequestContext, raw) => {
  const input = parse(replicaDeleted, raw);
  const service = ctx.service;
  const key = await service.store.getKey(input.KeyId);
  if (!key) return {};
  await authorizeKey(ctx, key, "kms:ReplicateKey");
  const now = service.clock.now().getTime();
  const updated = await service.store.updateKey(input.KeyId, (current) => {
    if (!current.multiRegion) return current;
    const replicaRegions = current.multiRegion.replicaRegions.filter((r) => r !== input.Region);
    const next = { ...current, multiRegion: { ...current.multiRegion, replicaRegions } };
    if (current.state === "PendingReplicaDeletion" && replicaRegions.length === 0) {
      const days = current.pendingWindowInDays ?? 30;
      return {
        ...omit(next, "settledState"),
        state: "PendingDeletion",
        deletionDate: now + days * DAY_MS,
      };
    }
    return next;
  });
  if (updated) ctx.resources.push(updated.arn);
  return {};
};
