/**
 * Three `keyhaven serve` processes (us-east-1, eu-west-1, ap-southeast-2) peered with each
 * other over loopback (issue 17, docs/multi-region.md): a primary replicated to both others,
 * ciphertext from each decrypting at every other, rotations at the primary reaching both
 * replicas, UpdatePrimaryRegion and rotation at the new primary, and the deletion rules.
 */
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdatePrimaryRegionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { spawnPeered } from "./support/peered.js";
import { kmsClient, type SpawnedServer } from "./support/server.js";

const REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"] as const;
type Region = (typeof REGIONS)[number];
const [EAST, WEST, SOUTH] = REGIONS;

describe("three keyhaven serve processes peered with each other", () => {
  const servers = new Map<Region, SpawnedServer>();
  const kms = new Map<Region, KMSClient>();
  const at = (region: Region) => kms.get(region)!;

  beforeAll(async () => {
    const fleet = await spawnPeered(REGIONS);
    for (const region of REGIONS) {
      servers.set(region, fleet.servers.get(region)!);
      kms.set(region, kmsClient(fleet.servers.get(region)!));
    }
  }, 180_000);

  afterAll(async () => {
    for (const client of kms.values()) client.destroy();
    for (const server of servers.values()) expect(await server.stop()).toBe(0);
  });

  const seal = async (region: Region, keyId: string, message: string) =>
    (await at(region).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(message) })))
      .CiphertextBlob!;
  const version = (blob: Uint8Array) => Buffer.from(blob).readUInt32BE(17);
  /** Encrypts at each Region and decrypts at each other; returns the material versions used. */
  async function everyWay(keyId: string, label: string): Promise<number[]> {
    const versions: number[] = [];
    for (const from of REGIONS) {
      const blob = await seal(from, keyId, `${label} from ${from}`);
      versions.push(version(blob));
      for (const to of REGIONS) {
        const opened = await at(to).send(new DecryptCommand({ CiphertextBlob: blob }));
        expect([opened.KeyId, Buffer.from(opened.Plaintext!).toString()]).toEqual([
          `arn:aws:kms:${to}:000000000000:key/${keyId}`,
          `${label} from ${from}`,
        ]);
      }
    }
    return versions;
  }
  const roles = () =>
    Promise.all(
      REGIONS.map(async (region) => {
        const m = (await at(region).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
        return [
          m.MultiRegionConfiguration!.MultiRegionKeyType,
          m.MultiRegionConfiguration!.PrimaryKey!.Region,
          m.MultiRegionConfiguration!.ReplicaKeys!.map((r) => r.Region).sort(),
        ];
      }),
    );
  let keyId = "";

  it("replicates a primary to both peers; each knows the whole family; each decrypts what any encrypted", async () => {
    keyId = (await at(EAST).send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
    const before = await seal(EAST, keyId, "before replication");
    for (const region of [WEST, SOUTH])
      expect(
        (
          await at(EAST).send(
            new ReplicateKeyCommand({
              KeyId: keyId,
              ReplicaRegion: region,
              Description: `replica in ${region}`,
            }),
          )
        ).ReplicaKeyMetadata,
      ).toMatchObject({ KeyId: keyId, KeyState: "Enabled", Description: `replica in ${region}` });
    // The first replica learned of the second from the primary's push.
    expect(await roles()).toEqual([
      ["PRIMARY", EAST, [SOUTH, WEST]],
      ["REPLICA", EAST, [SOUTH, WEST]],
      ["REPLICA", EAST, [SOUTH, WEST]],
    ]);
    for (const region of [WEST, SOUTH])
      expect(
        Buffer.from(
          (await at(region).send(new DecryptCommand({ CiphertextBlob: before }))).Plaintext!,
        ).toString(),
      ).toBe("before replication");
    expect(await everyWay(keyId, "v1")).toEqual([1, 1, 1]);
  }, 120_000);

  it("rotation is the primary's, and both replicas get the new version", async () => {
    for (const region of [WEST, SOUTH])
      expect(
        await failure(at(region).send(new RotateKeyOnDemandCommand({ KeyId: keyId }))),
      ).toMatchObject({ name: "UnsupportedOperationException" });
    await at(EAST).send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    // Every Region encrypts under version 2 now, and decrypts version 2 from every other.
    expect(await everyWay(keyId, "v2")).toEqual([2, 2, 2]);
  }, 120_000);

  it("UpdatePrimaryRegion moves the primary; the new primary rotates for all", async () => {
    expect(
      await failure(
        at(WEST).send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: SOUTH })),
      ),
    ).toMatchObject({ name: "UnsupportedOperationException" });
    await at(EAST).send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: SOUTH }));
    expect(await roles()).toEqual([
      ["REPLICA", SOUTH, [WEST, EAST]],
      ["REPLICA", SOUTH, [WEST, EAST]],
      ["PRIMARY", SOUTH, [WEST, EAST]],
    ]);
    expect(
      await failure(at(EAST).send(new RotateKeyOnDemandCommand({ KeyId: keyId }))),
    ).toMatchObject({ name: "UnsupportedOperationException" });
    await at(SOUTH).send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect(await everyWay(keyId, "v3")).toEqual([3, 3, 3]);
  }, 120_000);

  it("deletion follows AWS's rules: the primary waits for its replicas, each replica on its own", async () => {
    const schedule = (region: Region) =>
      at(region).send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(await schedule(SOUTH)).toMatchObject({ KeyState: "PendingReplicaDeletion" });
    // Not usable for cryptography while it waits; the replicas are unaffected.
    expect(
      await failure(
        at(SOUTH).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })),
      ),
    ).toMatchObject({ name: "KMSInvalidStateException" });
    expect(version(await seal(EAST, keyId, "still"))).toBe(3);
    // The primary cannot replicate while waiting; cancelling (Disabled, as in AWS) and enabling bring it back.
    expect(
      await failure(at(SOUTH).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EAST }))),
    ).toMatchObject({ name: "KMSInvalidStateException" });
    await at(SOUTH).send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    await at(SOUTH).send(new EnableKeyCommand({ KeyId: keyId }));
    expect(version(await seal(SOUTH, keyId, "back"))).toBe(3);
    // Replicas schedule their own deletion; the primary then waits for them.
    for (const region of [EAST, WEST])
      expect(await schedule(region)).toMatchObject({ KeyState: "PendingDeletion" });
    expect(await schedule(SOUTH)).toMatchObject({ KeyState: "PendingReplicaDeletion" });
    expect(
      (await at(SOUTH).send(new DescribeKeyCommand({ KeyId: keyId })))
        .KeyMetadata!.MultiRegionConfiguration!.ReplicaKeys!.map((r) => r.Region)
        .sort(),
    ).toEqual([WEST, EAST]);
  }, 120_000);
});
