/**
 * Multi-Region keys declared with the operator (issue 17 item 4, docs/operator.md) on the
 * real API server: two key services peered over loopback (us-east-1 and eu-west-1), each
 * with its own `keyhaven controller` watching its own namespace (standing for two clusters).
 * A KmsKey with spec.multiRegion at A and a KmsKey with spec.replicaOf at B reach Ready;
 * data encrypted at A decrypts at B; the replica's own properties (description, tags,
 * alias) are managed at B; the CRD's CEL rules keep multiRegion and replicaOf immutable.
 */
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  ListAliasesCommand,
  ListResourceTagsCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsKey } from "../src/api/v1alpha1/types.js";
import { eventually } from "./kube/drive.js";
import { kmsAlias, kmsKey } from "./kube/fixtures.js";
import {
  applyCrds,
  controllerIdentity,
  createObject,
  kmsEnvironment,
  mergeObject,
  startControllerProgram,
  waitReady,
  type ControllerProgram,
} from "./kube/realCluster.js";
import { spawnPeered, type PeeredFleet } from "./support/peered.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, type SpawnedServer } from "./support/server.js";

const EAST = "us-east-1";
const WEST = "eu-west-1";
let plane: ControlPlane;
const services = new Map<string, SpawnedServer>();
const kms = new Map<string, KMSClient>();
const controllers: ControllerProgram[] = [];
const NS = { [EAST]: "cluster-a", [WEST]: "cluster-b" } as const;

beforeAll(async () => {
  let fleet: PeeredFleet;
  [plane, fleet] = await Promise.all([startControlPlane(), spawnPeered([EAST, WEST])]);
  const credentials = { credential: fleet.credential };
  const [east, west] = [fleet.servers.get(EAST)!, fleet.servers.get(WEST)!];
  services.set(EAST, east).set(WEST, west);
  kms.set(EAST, kmsClient(east)).set(WEST, kmsClient(west));
  await applyCrds(plane);
  for (const region of [EAST, WEST] as const) {
    const own = `keyhaven-${NS[region]}`;
    await createNamespace(plane, own);
    await createNamespace(plane, NS[region]);
    const identity = await controllerIdentity(plane, own, "keyhaven-controller");
    controllers.push(
      await startControllerProgram(
        [
          "--kubeconfig",
          identity.kubeconfig,
          "--namespace",
          own,
          "--watch-namespace",
          NS[region],
          "--metrics-listen",
          "127.0.0.1:0",
          "--disable-webhook",
          "--identity",
          `ctl-${region}`,
          "--drift-check-interval",
          "2s",
        ],
        kmsEnvironment(services.get(region)!, credentials.credential),
      ),
    );
  }
}, 180_000);

afterAll(async () => {
  for (const c of controllers) await c.kill();
  for (const k of kms.values()) k.destroy();
  for (const s of services.values()) await s.stop();
  await plane?.stop();
});

describe("KmsKey multiRegion and replicaOf across two peered key services", () => {
  it("a primary in A and its replica declared in B reach Ready; A's ciphertext decrypts at B; B manages the replica's own properties", async () => {
    const created = await createObject(plane, NS[EAST], {
      ...kmsKey("orders"),
      spec: { multiRegion: true, description: "orders primary" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const primary = await waitReady<KmsKey>(plane, "KmsKey", NS[EAST], "orders", 60_000);
    const keyId = primary.status!.keyId!;
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(primary.status).toMatchObject({
      arn: `arn:aws:kms:${EAST}:000000000000:key/${keyId}`,
      multiRegionKeyType: "PRIMARY",
      primaryRegion: EAST,
    });

    const replicaObj = await createObject(plane, NS[WEST], {
      ...kmsKey("orders"),
      spec: {
        replicaOf: { region: EAST, keyId },
        description: "orders replica",
        tags: { cluster: "b" },
      },
    });
    expect(replicaObj.status, JSON.stringify(replicaObj.body)).toBe(201);
    const replica = await waitReady<KmsKey>(plane, "KmsKey", NS[WEST], "orders", 60_000);
    expect(replica.status).toMatchObject({
      keyId,
      arn: `arn:aws:kms:${WEST}:000000000000:key/${keyId}`,
      keyState: "Enabled",
      multiRegionKeyType: "REPLICA",
      primaryRegion: EAST,
    });
    const atWest = (await kms.get(WEST)!.send(new DescribeKeyCommand({ KeyId: keyId })))
      .KeyMetadata!;
    expect(atWest.Description).toBe("orders replica");
    expect(
      (await kms.get(EAST)!.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
        .MultiRegionConfiguration!.ReplicaKeys,
    ).toEqual([{ Arn: atWest.Arn, Region: WEST }]);

    // Data encrypted at A decrypts at B (no call to A).
    const blob = (
      await kms
        .get(EAST)!
        .send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("across clusters") }))
    ).CiphertextBlob!;
    const opened = await kms.get(WEST)!.send(new DecryptCommand({ CiphertextBlob: blob }));
    expect([opened.KeyId, Buffer.from(opened.Plaintext!).toString()]).toEqual([
      atWest.Arn,
      "across clusters",
    ]);

    // Independent properties: B's description and tags change at B only; an alias at B.
    await mergeObject(plane, "KmsKey", NS[WEST], "orders", {
      spec: { description: "orders replica, renamed", tags: { cluster: "b", tier: "1" } },
    });
    await waitReady(plane, "KmsKey", NS[WEST], "orders", 60_000);
    await eventually(
      async () => {
        const west = (await kms.get(WEST)!.send(new DescribeKeyCommand({ KeyId: keyId })))
          .KeyMetadata!;
        return west.Description === "orders replica, renamed";
      },
      "the replica's new description at B",
      30_000,
      200,
    );
    const tags = (await kms.get(WEST)!.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags!;
    expect(tags).toEqual(expect.arrayContaining([{ TagKey: "tier", TagValue: "1" }]));
    expect(
      (await kms.get(EAST)!.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
        .Description,
    ).toBe("orders primary");
    await createObject(
      plane,
      NS[WEST],
      kmsAlias("orders", { name: "alias/orders", targetKeyRef: { name: "orders" } }),
    );
    await waitReady(plane, "KmsAlias", NS[WEST], "orders", 60_000);
    const aliases = (await kms.get(WEST)!.send(new ListAliasesCommand({ KeyId: keyId }))).Aliases!;
    expect(aliases.map((a) => a.AliasName)).toEqual(["alias/orders"]);
    const viaAlias = await kms
      .get(WEST)!
      .send(new EncryptCommand({ KeyId: "alias/orders", Plaintext: Buffer.from("by alias") }));
    expect(
      Buffer.from(
        (await kms.get(EAST)!.send(new DecryptCommand({ CiphertextBlob: viaAlias.CiphertextBlob })))
          .Plaintext!,
      ).toString(),
    ).toBe("by alias");
  }, 240_000);

  it("the CRD keeps multiRegion and replicaOf immutable, and refuses both at once", async () => {
    const keyId = "mrk-0123456789abcdef0123456789abcdef";
    const both = await createObject(plane, NS[WEST], {
      ...kmsKey("both"),
      spec: { multiRegion: true, replicaOf: { region: EAST, keyId } },
    });
    expect(both.status).toBe(422);
    expect(JSON.stringify(both.body)).toContain("set one or the other");
    const toSingle = await mergeObject(plane, "KmsKey", NS[EAST], "orders", {
      spec: { multiRegion: false },
    });
    expect(toSingle.status).toBe(422);
    expect(JSON.stringify(toSingle.body)).toContain("multiRegion is immutable");
    const otherPrimary = await mergeObject(plane, "KmsKey", NS[WEST], "orders", {
      spec: { replicaOf: { region: EAST, keyId } },
    });
    expect(otherPrimary.status).toBe(422);
    expect(JSON.stringify(otherPrimary.body)).toContain("replicaOf is immutable");
    const dropped = await mergeObject(plane, "KmsKey", NS[WEST], "orders", {
      spec: { replicaOf: null },
    });
    expect(dropped.status).toBe(422);
    expect(JSON.stringify(dropped.body)).toContain("replicaOf is immutable");
    const badId = await createObject(plane, NS[WEST], {
      ...kmsKey("bad-id"),
      spec: { replicaOf: { region: EAST, keyId: "1234abcd-12ab-34cd-56ef-1234567890ab" } },
    });
    expect(badId.status).toBe(422);
  }, 60_000);
});
