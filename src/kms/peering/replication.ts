/**
 * Multi-Region keys across Keyhaven instances (docs/multi-region.md). A primary keeps its
 * replicas in step by sending each one a sync: the properties replicas share with the
 * primary (key spec, usage, origin, rotation, material versions), the Regions of the key
 * family, and every material version sealed for the receiving instance's peering key
 * (crypto/peeringEnvelope.ts). A sync is idempotent and carries the whole shared state,
 * so the next one repairs whatever an unreachable peer missed.
 *
 * Wire shape of `KeyhavenSyncReplica` (JSON):
 *   { KeyId, PrimaryRegion, ReplicaRegions[], Shared{...}, Materials[{Version, CreatedAt,
 *     RotationType?, MaterialId?}], Envelope?, Create?{Description, Policy?, Tags[]}, Settle? }
 */
import type { KeyMetadata } from "@aws-sdk/client-kms";
import { z } from "zod";
import { kmsError } from "../errors.js";
import { KeyService } from "../keyService.js";
import type { KeyMaterialRecord, KeyRecord, MultiRegionRecord } from "../keys/keyRecord.js";
import {
  openFromPeer,
  sealForPeer,
  PeeringEnvelopeError,
  type PeeringEnvelope,
} from "../crypto/peeringEnvelope.js";
import { omit } from "../lifecycle/omit.js";

export const MRK_ID = /^mrk-[0-9a-f]{32}$/;

/** Whether `key` is the primary of a multi-Region key in this instance's Region. */
export const isPrimaryHere = (service: KeyService, key: KeyRecord): boolean =>
  key.multiRegion !== undefined && key.multiRegion.primaryRegion === service.region;

/** Replicas follow the primary for these; everything else (policy, tags, aliases, grants, enabled) is their own. */
const shared = z.object({
  keySpec: z.string().max(64),
  keyUsage: z.string().max(64),
  origin: z.enum(["AWS_KMS", "EXTERNAL"]),
  currentMaterialVersion: z.number().int().min(1),
  rotationEnabled: z.boolean().optional(),
  rotationPeriodInDays: z.number().int().min(90).max(2560).optional(),
  nextRotationAt: z.number().int().optional(),
  onDemandRotations: z.number().int().min(0).optional(),
  importedMaterialId: z.string().max(128).optional(),
});
type Shared = z.infer<typeof shared>;

const tag = z.object({ TagKey: z.string().max(128), TagValue: z.string().max(256) });
const region = z.string().regex(/^([a-z]+-){2,3}\d+$/);

export const syncInput = z.object({
  KeyId: z.string().regex(MRK_ID),
  PrimaryRegion: region,
  ReplicaRegions: z.array(region).max(64),
  Shared: shared,
  Materials: z
    .array(
      z.object({
        Version: z.number().int().min(1),
        CreatedAt: z.number().int(),
        RotationType: z.enum(["AUTOMATIC", "ON_DEMAND"]).optional(),
        MaterialId: z.string().max(128).optional(),
      }),
    )
    .max(10_000),
  Envelope: z
    .object({
      EncryptedKey: z.string().max(4096),
      Items: z.array(z.object({ Iv: z.string().max(64), Sealed: z.string().max(65_536) })),
    })
    .optional(),
  Create: z
    .object({
      Description: z.string().max(8192),
      Policy: z.string().max(32_768).optional(),
      Tags: z.array(tag).max(50),
    })
    .optional(),
  Settle: z.boolean().optional(),
});
export type SyncInput = z.infer<typeof syncInput>;

/**
 * KeyMetadata as a peer sent it (dates as JSON strings, or epoch seconds from a modelled
 * operation) → with Dates, as the encoder wants.
 */
export function reviveMetadata(value: unknown): KeyMetadata | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const m = { ...(value as Record<string, unknown>) };
  for (const field of ["CreationDate", "DeletionDate", "ValidTo"]) {
    const given = m[field];
    if (typeof given === "string") m[field] = new Date(given);
    else if (typeof given === "number") m[field] = new Date(given * 1000);
  }
  return m as unknown as KeyMetadata;
}

const label = (keyId: string, version: number) => `material/${keyId}/${version}`;

function sharedOf(key: KeyRecord): Shared {
  return {
    keySpec: key.keySpec,
    keyUsage: key.keyUsage,
    origin: key.origin as Shared["origin"],
    currentMaterialVersion: key.currentMaterialVersion,
    ...(key.rotationEnabled !== undefined && { rotationEnabled: key.rotationEnabled }),
    ...(key.rotationPeriodInDays !== undefined && {
      rotationPeriodInDays: key.rotationPeriodInDays,
    }),
    ...(key.nextRotationAt !== undefined && { nextRotationAt: key.nextRotationAt }),
    ...(key.onDemandRotations !== undefined && { onDemandRotations: key.onDemandRotations }),
    ...(key.importedMaterialId !== undefined && { importedMaterialId: key.importedMaterialId }),
  };
}

async function allMaterials(service: KeyService, keyId: string): Promise<KeyMaterialRecord[]> {
  const out: KeyMaterialRecord[] = [];
  let after: number | undefined;
  do {
    const page = await service.store.listMaterials(keyId, 100, after);
    out.push(...page.items);
    after = page.next === undefined ? undefined : Number(page.next);
  } while (after !== undefined);
  return out;
}

function peersOf(service: KeyService) {
  if (!service.peers)
    throw kmsError(
      "UnsupportedOperationException",
      "This Keyhaven instance has no peers; start it with --peer REGION=URL or --region A,B.",
    );
  return service.peers;
}

/**
 * Sends `key`'s shared state and material to the instance of `region`. Imported material
 * (EXTERNAL origin) is never sent: each replica imports the same material itself, as in AWS.
 */
export async function syncReplica(
  service: KeyService,
  key: KeyRecord,
  region: string,
  multiRegion: MultiRegionRecord,
  extra: Pick<SyncInput, "Create" | "Settle"> = {},
): Promise<Record<string, unknown>> {
  const peers = peersOf(service);
  const materials = key.origin === "EXTERNAL" ? [] : await allMaterials(service, key.keyId);
  let envelope: PeeringEnvelope | undefined;
  if (materials.length > 0) {
    const publicKey = await peers.peeringKey(region);
    const plain = await Promise.all(
      materials.map(async (m) => ({
        label: label(key.keyId, m.version),
        bytes: await service.rootKey.unwrap(
          m.wrapped,
          KeyService.materialContext(m.keyId, m.version),
        ),
      })),
    );
    try {
      envelope = sealForPeer(publicKey, plain, service.random);
    } catch (err) {
      if (err instanceof PeeringEnvelopeError)
        throw kmsError("KMSInternalException", `Region ${region}: ${err.message}.`);
      throw err;
    } finally {
      for (const p of plain) p.bytes.fill(0);
    }
  }
  const input: SyncInput = {
    KeyId: key.keyId,
    PrimaryRegion: multiRegion.primaryRegion,
    ReplicaRegions: [...multiRegion.replicaRegions],
    Shared: sharedOf(key),
    Materials: materials.map((m) => ({
      Version: m.version,
      CreatedAt: m.createdAt,
      ...(m.rotationType !== undefined && { RotationType: m.rotationType }),
      ...(m.materialId !== undefined && { MaterialId: m.materialId }),
    })),
    ...(envelope && {
      Envelope: { EncryptedKey: envelope.EncryptedKey, Items: [...envelope.Items] },
    }),
    ...extra,
  };
  return peers.call(region, "KeyhavenSyncReplica", input);
}

/**
 * After a change of shared state at the primary (rotation, rotation settings, the family's
 * Regions): pushes it to every replica. Returns the Regions that could not be reached; the
 * next push (or ReplicateKey/UpdatePrimaryRegion) repairs them.
 */
export async function pushToReplicas(
  service: KeyService,
  key: KeyRecord,
  skip: readonly string[] = [],
): Promise<string[]> {
  if (!isPrimaryHere(service, key) || !service.peers) return [];
  const unreachable: string[] = [];
  for (const region of key.multiRegion!.replicaRegions) {
    if (skip.includes(region)) continue;
    try {
      await syncReplica(service, key, region, key.multiRegion!);
    } catch {
      unreachable.push(region);
    }
  }
  return unreachable;
}

/**
 * The receiving side of a sync: creates the replica (state Creating until the sender
 * settles it), adds material versions it lacks, and takes the shared properties. Material
 * is stored before the current version moves, so a replica never points at material it
 * does not hold.
 */
export async function applySync(
  service: KeyService,
  input: SyncInput,
  existing: KeyRecord | undefined,
  now: number,
): Promise<KeyRecord> {
  if (!service.peeringKey)
    throw kmsError("UnsupportedOperationException", "Peering is not configured here.");
  if (input.Materials.length > 0 && !input.Envelope)
    throw kmsError("ValidationException", "Materials come sealed in an Envelope.");
  let plain: Buffer[] = [];
  if (input.Envelope) {
    try {
      plain = openFromPeer(
        service.peeringKey.privateKey,
        input.Envelope,
        input.Materials.map((m) => label(input.KeyId, m.Version)),
      );
    } catch (err) {
      if (err instanceof PeeringEnvelopeError)
        throw kmsError(
          "ValidationException",
          `The sealed key material was refused: ${err.message}.`,
        );
      throw err;
    }
  }
  const wrapped: KeyMaterialRecord[] = [];
  try {
    for (const [i, m] of input.Materials.entries()) {
      wrapped.push({
        keyId: input.KeyId,
        version: m.Version,
        createdAt: m.CreatedAt,
        wrapped: await service.wrapMaterial(input.KeyId, m.Version, plain[i]!),
        ...(m.RotationType !== undefined && { rotationType: m.RotationType }),
        ...(m.MaterialId !== undefined && { materialId: m.MaterialId }),
      });
    }
  } finally {
    for (const p of plain) p.fill(0);
  }
  const multiRegion: MultiRegionRecord = {
    primaryRegion: input.PrimaryRegion,
    replicaRegions: input.ReplicaRegions.filter((r) => r !== input.PrimaryRegion),
  };
  const becomesPrimary = input.PrimaryRegion === service.region;
  const withShared = (key: KeyRecord): KeyRecord => {
    const { nextRotationAt, ...rest } = input.Shared;
    // Absent optional members stay absent (exactOptionalPropertyTypes).
    const given = Object.fromEntries(
      Object.entries(rest).filter(([, v]) => v !== undefined),
    ) as Partial<KeyRecord>;
    return {
      ...omit(key, "nextRotationAt"),
      ...given,
      // Only the primary rotates on a schedule; replicas get its versions by sync.
      ...(becomesPrimary && nextRotationAt !== undefined && { nextRotationAt }),
      multiRegion,
    };
  };

  if (!existing) {
    if (!input.Create)
      throw kmsError("NotFoundException", `Key '${service.keyArn(input.KeyId)}' does not exist`);
    const [first, ...rest] = wrapped;
    const external = input.Shared.origin === "EXTERNAL";
    const record = withShared({
      keyId: input.KeyId,
      arn: service.keyArn(input.KeyId),
      createdAt: now,
      description: input.Create.Description,
      keySpec: input.Shared.keySpec,
      keyUsage: input.Shared.keyUsage,
      origin: input.Shared.origin,
      state: "Creating",
      settledState: external ? "PendingImport" : "Enabled",
      ...(external && { materialImported: false }),
      policy: input.Create.Policy!,
      tags: input.Create.Tags,
      currentMaterialVersion: input.Shared.currentMaterialVersion,
    });
    // The first version goes in with the key; a later version before it is current is harmless.
    await service.store.createKey(
      { ...record, currentMaterialVersion: first?.version ?? record.currentMaterialVersion },
      first,
    );
    for (const m of rest) await service.store.addMaterial(m);
  } else {
    if (
      existing.multiRegion?.primaryRegion === service.region &&
      input.PrimaryRegion !== service.region
    )
      throw kmsError(
        "KMSInvalidStateException",
        `${existing.arn} is the primary key; only UpdatePrimaryRegion in ${service.region} moves it.`,
      );
    if (existing.multiRegion === undefined)
      throw kmsError(
        "AlreadyExistsException",
        `Key '${existing.arn}' exists and is not multi-Region.`,
      );
    if (input.Create && existing.state !== "Creating")
      throw kmsError(
        "AlreadyExistsException",
        `Key '${existing.arn}' already exists in Region ${service.region}.`,
      );
    for (const m of wrapped) {
      const held = await service.store.getMaterial(m.keyId, m.version);
      if (held === undefined) await service.store.addMaterial(m);
      else if (held.materialId !== undefined && held.materialId !== m.materialId)
        throw kmsError(
          "KMSInternalException",
          `Material version ${m.version} of ${existing.arn} differs from the primary's.`,
        );
    }
  }
  const updated = await service.store.updateKey(input.KeyId, (current) => {
    const next = withShared(current);
    if (input.Settle && current.state === "Creating")
      return { ...omit(next, "settledState"), state: current.settledState ?? "Enabled" };
    return next;
  });
  if (!updated)
    throw kmsError("NotFoundException", `Key '${service.keyArn(input.KeyId)}' does not exist`);
  return updated;
}

/** Before a replica is deleted for good: the primary's instance drops it from the family. */
export async function leaveFamily(service: KeyService, key: KeyRecord): Promise<void> {
  if (!key.multiRegion || key.multiRegion.primaryRegion === service.region) return;
  await peersOf(service).call(key.multiRegion.primaryRegion, "KeyhavenReplicaDeleted", {
    KeyId: key.keyId,
    Region: service.region,
  });
}
