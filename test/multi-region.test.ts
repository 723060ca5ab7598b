/**
 * Multi-Region keys (issue 17, docs/multi-region.md) against the real `keyhaven serve`:
 * one process serving two Regions, and two processes peered over loopback with a capturing
 * proxy between them. Driven by @aws-sdk/client-kms, the AWS CLI, boto3 and the AWS
 * Encryption SDK's MRK-aware keyring.
 */
import { writeFileSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  KMS,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  UpdatePrimaryRegionCommand,
  VerifyCommand,
  VerifyMacCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import {
  buildAwsKmsMrkAwareStrictMultiKeyringNode,
  buildClient,
  CommitmentPolicy,
} from "@aws-crypto/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { runBoto3, runCli } from "./support/clients.js";
import { freePort } from "./support/clusterWebhook.js";
import {
  kmsClient,
  spawnServer,
  startInProcess,
  tempDir,
  type InProcessServer,
  type SpawnedServer,
} from "./support/server.js";

const EAST = "us-east-1";
const WEST = "eu-west-1";
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("utf8");
const seal = async (kms: KMSClient, keyId: string, message: string) =>
  (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(message) })))
    .CiphertextBlob!;
const open = async (kms: KMSClient, blob: Uint8Array) =>
  text((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext);

describe("one process serving two Regions (serve --region us-east-1,eu-west-1)", () => {
  let server: SpawnedServer;
  let east: KMSClient;
  let west: KMSClient;

  beforeAll(async () => {
    server = await spawnServer({ args: ["--region", `${EAST},${WEST}`], timeoutMs: 60_000 });
    east = kmsClient(server);
    west = kmsClient({ ...server, region: WEST });
  }, 90_000);

  afterAll(async () => {
    east?.destroy();
    west?.destroy();
    expect(await server?.stop()).toBe(0);
  });

  it("keeps the Regions apart: a key and its ARN belong to the Region that made it", async () => {
    const key = (await east.send(new CreateKeyCommand({}))).KeyMetadata!;
    expect(key.Arn).toBe(`arn:aws:kms:${EAST}:000000000000:key/${key.KeyId}`);
    expect(key.MultiRegion).toBe(false);
    expect(await failure(west.send(new DescribeKeyCommand({ KeyId: key.KeyId })))).toMatchObject({
      name: "NotFoundException",
    });
    // Each audit line names the Region that served the request. The line is written before
    // the answer, but this process reads the server's stdout on its own schedule: poll.
    const lastDescribe = () =>
      server
        .output()
        .split("\n")
        .filter((l) => l.includes('"eventName":"DescribeKey"'))
        .at(-1);
    await expect.poll(lastDescribe).toContain(`"awsRegion":"${WEST}"`);
  });

  it("replicates, decrypts in the other Region, follows rotations, moves the primary and deletes by AWS's rules", async () => {
    const primary = (
      await east.send(new CreateKeyCommand({ MultiRegion: true, Description: "primary" }))
    ).KeyMetadata!;
    const keyId = primary.KeyId!;
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(primary.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: "PRIMARY",
      PrimaryKey: { Arn: primary.Arn, Region: EAST },
      ReplicaKeys: [],
    });
    const sealed = await east.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("before replication") }),
    );

    const replica = await east.send(
      new ReplicateKeyCommand({
        KeyId: keyId,
        ReplicaRegion: WEST,
        Description: "replica",
        Tags: [{ TagKey: "team", TagValue: "west" }],
      }),
    );
    const replicaArn = `arn:aws:kms:${WEST}:000000000000:key/${keyId}`;
    expect(replica.ReplicaKeyMetadata).toMatchObject({
      KeyId: keyId,
      Arn: replicaArn,
      KeyState: "Enabled",
      Description: "replica",
      MultiRegion: true,
      MultiRegionConfiguration: {
        MultiRegionKeyType: "REPLICA",
        PrimaryKey: { Arn: primary.Arn, Region: EAST },
        ReplicaKeys: [{ Arn: replicaArn, Region: WEST }],
      },
    });
    expect(replica.ReplicaTags).toEqual([{ TagKey: "team", TagValue: "west" }]);
    expect(
      (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
        .MultiRegionConfiguration!.ReplicaKeys,
    ).toEqual([{ Arn: replicaArn, Region: WEST }]);
    expect(
      await failure(east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }))),
    ).toMatchObject({ name: "AlreadyExistsException" });

    // Either Region decrypts what the other encrypted; the answer names the local ARN.
    const opened = await west.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }));
    expect([opened.KeyId, text(opened.Plaintext)]).toEqual([replicaArn, "before replication"]);
    expect(await open(east, await seal(west, keyId, "from the replica"))).toBe("from the replica");

    // Rotation is the primary's; the replica gets the new version.
    expect(await failure(west.send(new RotateKeyOnDemandCommand({ KeyId: keyId })))).toMatchObject({
      name: "UnsupportedOperationException",
    });
    await east.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const rotated = await seal(east, keyId, "after rotation");
    expect(Buffer.from(rotated).readUInt32BE(17)).toBe(2);
    expect(await open(west, rotated)).toBe("after rotation");

    // UpdatePrimaryRegion: the replica becomes the primary and may rotate.
    await east.send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST }));
    const roles = async () =>
      Promise.all(
        [east, west].map(
          async (c) =>
            (await c.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
              .MultiRegionConfiguration!.MultiRegionKeyType,
        ),
      );
    expect(await roles()).toEqual(["REPLICA", "PRIMARY"]);
    await west.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect(await open(east, await seal(west, keyId, "version 3"))).toBe("version 3");

    // A primary with replicas waits in PendingReplicaDeletion; a replica is deleted on its own.
    expect(
      await west.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })),
    ).toMatchObject({ KeyState: "PendingReplicaDeletion", PendingWindowInDays: 7 });
    expect(
      await failure(west.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))),
    ).toMatchObject({ name: "KMSInvalidStateException" });
    expect(
      await east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })),
    ).toMatchObject({ KeyState: "PendingDeletion" });
  }, 60_000);

  it("replicates asymmetric and HMAC keys: the replica signs and MACs as the primary verifies", async () => {
    const rsa = (
      await east.send(
        new CreateKeyCommand({ MultiRegion: true, KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY" }),
      )
    ).KeyMetadata!.KeyId!;
    const hmac = (
      await east.send(
        new CreateKeyCommand({
          MultiRegion: true,
          KeySpec: "HMAC_256",
          KeyUsage: "GENERATE_VERIFY_MAC",
        }),
      )
    ).KeyMetadata!.KeyId!;
    for (const KeyId of [rsa, hmac])
      await east.send(new ReplicateKeyCommand({ KeyId, ReplicaRegion: WEST }));
    expect(
      Buffer.from((await west.send(new GetPublicKeyCommand({ KeyId: rsa }))).PublicKey!),
    ).toEqual(Buffer.from((await east.send(new GetPublicKeyCommand({ KeyId: rsa }))).PublicKey!));
    const message = Buffer.from("signed in the west");
    const { Signature } = await west.send(
      new SignCommand({ KeyId: rsa, Message: message, SigningAlgorithm: "RSASSA_PSS_SHA_256" }),
    );
    expect(
      (
        await east.send(
          new VerifyCommand({
            KeyId: rsa,
            Message: message,
            Signature,
            SigningAlgorithm: "RSASSA_PSS_SHA_256",
          }),
        )
      ).SignatureValid,
    ).toBe(true);
    const { Mac } = await west.send(
      new GenerateMacCommand({ KeyId: hmac, Message: message, MacAlgorithm: "HMAC_SHA_256" }),
    );
    expect(
      (
        await east.send(
          new VerifyMacCommand({
            KeyId: hmac,
            Message: message,
            Mac,
            MacAlgorithm: "HMAC_SHA_256",
          }),
        )
      ).MacValid,
    ).toBe(true);
  }, 60_000);
});

/** A loopback TCP proxy that forwards to `port` and keeps every byte both ways. */
async function capturingProxy(
  port: number,
): Promise<{ server: Server; url: string; bytes: () => Buffer; cut: () => void }> {
  const chunks: Buffer[] = [];
  const open = new Set<{ destroy(): void }>();
  const server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    open.add(client).add(upstream);
    client.on("data", (d: Buffer) => {
      chunks.push(d);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      chunks.push(d);
      client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: own } = server.address() as { port: number };
  return {
    server,
    url: `http://127.0.0.1:${own}`,
    bytes: () => Buffer.concat(chunks),
    // The peer goes away: no new connections, and the pooled ones are dropped.
    cut: () => {
      server.close();
      for (const socket of open) socket.destroy();
    },
  };
}

describe("two keyhaven serve processes peered over loopback", () => {
  let a: InProcessServer;
  let b: SpawnedServer;
  let proxy: Awaited<ReturnType<typeof capturingProxy>>;
  let east: KMSClient;
  let west: KMSClient;

  beforeAll(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    proxy = await capturingProxy(portB);
    // A (us-east-1) reaches B only through the proxy; both share one credentials file.
    a = await startInProcess({
      region: EAST,
      args: ["--listen", `127.0.0.1:${portA}`, "--peer", `${WEST}=${proxy.url}`],
    });
    b = await spawnServer({
      region: WEST,
      credentials: {
        path: `${a.dataDir}/test-credentials.yaml`,
        credential: a.credentials,
      },
      args: ["--listen", `127.0.0.1:${portB}`, "--peer", `${EAST}=${a.url}`],
      timeoutMs: 60_000,
    });
    east = kmsClient(a);
    west = kmsClient(b);
  }, 120_000);

  afterAll(async () => {
    east?.destroy();
    west?.destroy();
    await a?.stop();
    if (b) expect(await b.stop()).toBe(0);
    proxy?.server.close();
  });

  it("replicates through the peer: the AWS CLI, boto3 and the Encryption SDK decrypt at the replica, and the wire carries no key material", async () => {
    const keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!
      .KeyId!;
    await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const replicaArn = `arn:aws:kms:${WEST}:000000000000:key/${keyId}`;

    const sealed = await east.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("crosses Regions") }),
    );
    const blob = Buffer.from(sealed.CiphertextBlob!).toString("base64");
    const dir = tempDir();
    writeFileSync(join(dir, "blob"), sealed.CiphertextBlob!);
    const cli = await runCli(b, ["kms", "decrypt", "--ciphertext-blob", "fileb://blob"], {
      cwd: dir,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json).toMatchObject({ KeyId: replicaArn });
    expect(Buffer.from(cli.json!["Plaintext"] as string, "base64").toString()).toBe(
      "crosses Regions",
    );
    const boto = await runBoto3(b, ["decrypt", blob]);
    expect(boto.code, boto.stderr).toBe(0);
    expect(boto.json).toEqual({
      keyId: replicaArn,
      plaintextB64: Buffer.from("crosses Regions").toString("base64"),
    });

    // AWS Encryption SDK: encrypt with the primary, decrypt with an MRK-aware strict keyring
    // that names only the replica.
    // The ESDK pins its own @aws-sdk/client-kms; the aggregated client of ours is the same API.
    const clientProvider = ((region: string) => {
      const server = region === EAST ? a : b;
      return new KMS({ endpoint: server.url, region, credentials: server.credentials });
    }) as unknown as NonNullable<
      Parameters<typeof buildAwsKmsMrkAwareStrictMultiKeyringNode>[0]["clientProvider"]
    >;
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const { result } = await encrypt(
      buildAwsKmsMrkAwareStrictMultiKeyringNode({
        generatorKeyId: `arn:aws:kms:${EAST}:000000000000:key/${keyId}`,
        clientProvider,
      }),
      Buffer.from("esdk message"),
      { encryptionContext: { purpose: "mrk" } },
    );
    const { plaintext, messageHeader } = await decrypt(
      buildAwsKmsMrkAwareStrictMultiKeyringNode({ generatorKeyId: replicaArn, clientProvider }),
      result,
    );
    expect(plaintext.toString()).toBe("esdk message");
    expect(messageHeader.encryptionContext).toMatchObject({ purpose: "mrk" });

    // A rotation on the primary reaches the replica through the peer.
    await east.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect(await open(west, await seal(east, keyId, "rotated"))).toBe("rotated");

    // The material as A holds it, in every encoding it could travel in: not on the wire.
    const wire = proxy.bytes();
    expect(wire.length).toBeGreaterThan(0);
    expect(wire.toString("latin1")).toContain("KeyhavenSyncReplica");
    for (const version of [1, 2]) {
      const record = (await a.running.service.store.getMaterial(keyId, version))!;
      const material = await a.running.service.rootKey.unwrap(
        record.wrapped,
        `material/${keyId}/${version}`,
      );
      expect(material.length).toBe(32);
      for (const form of [
        material,
        Buffer.from(material.toString("base64")),
        Buffer.from(material.toString("hex")),
      ])
        expect(wire.indexOf(form)).toBe(-1);
      material.fill(0);
    }
  }, 120_000);

  it("a peer that is down leaves ReplicateKey retryable and nothing half-made", async () => {
    const keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!
      .KeyId!;
    proxy.cut();
    const down = await failure(
      east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST })),
    );
    expect(down).toMatchObject({ name: "DependencyTimeoutException", status: 503 });
    expect(
      (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
        .MultiRegionConfiguration!.ReplicaKeys,
    ).toEqual([]);
    expect(await failure(west.send(new DescribeKeyCommand({ KeyId: keyId })))).toMatchObject({
      name: "NotFoundException",
    });
  }, 60_000);
});
