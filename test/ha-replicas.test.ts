/**
 * High availability (docs/high-availability.md): three `keyhaven serve --store kubernetes`
 * processes on one real API server. Concurrent writes from all three lose nothing and
 * break no invariant; a key made on one is used at once on another; `kill -9` of one under
 * load (clients behind a round-robin TCP proxy, as behind a Service, with the SDK's
 * default retries) costs no acknowledged ciphertext.
 */
import { randomBytes } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  ListAliasesCommand,
  ListGrantsCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  RevokeGrantCommand,
  RotateKeyOnDemandCommand,
  UpdateAliasCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "./kube/drive.js";
import {
  createNamespace,
  kubernetesStoreFlags,
  startControlPlane,
  type ControlPlane,
} from "./support/kubeUp.js";
import { kmsClient, spawnReplicas, type SpawnedServer } from "./support/server.js";

let plane: ControlPlane;
let replicas: SpawnedServer[] = [];
let clients: KMSClient[] = [];

beforeAll(async () => {
  plane = await startControlPlane();
  const namespace = await createNamespace(plane, "keyhaven-ha");
  replicas = await spawnReplicas(3, kubernetesStoreFlags(plane, namespace), "keyhaven-ha-");
  clients = replicas.map((r) => kmsClient(r));
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await plane?.stop();
});

const text = (s: string) => new TextEncoder().encode(s);

it("a key made on one replica is used at once on the others", async () => {
  const [a, b, c] = clients as [KMSClient, KMSClient, KMSClient];
  for (let i = 0; i < 5; i++) {
    const { KeyMetadata } = await a.send(new CreateKeyCommand({}));
    const { CiphertextBlob } = await b.send(
      new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: text(`m${i}`) }),
    );
    const { Plaintext } = await c.send(new DecryptCommand({ CiphertextBlob }));
    expect(new TextDecoder().decode(Plaintext)).toBe(`m${i}`);
  }
});

it("concurrent CreateKey, CreateAlias, UpdateAlias, CreateGrant, RevokeGrant and rotation from all three lose nothing", async () => {
  const shared = await clients[0]!.send(new CreateKeyCommand({}));
  const sharedId = shared.KeyMetadata!.KeyId!;
  await clients[0]!.send(
    new CreateAliasCommand({ AliasName: "alias/shared", TargetKeyId: sharedId }),
  );
  const PER_REPLICA = 6;
  const made = await Promise.all(
    clients.map(async (client, r) => {
      const keys: string[] = [];
      const grants: { keyId: string; grantId: string; revoked: boolean }[] = [];
      for (let j = 0; j < PER_REPLICA; j++) {
        const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
        keys.push(keyId);
        await client.send(
          new CreateAliasCommand({ AliasName: `alias/r${r}-${j}`, TargetKeyId: keyId }),
        );
        await client.send(
          new UpdateAliasCommand({ AliasName: "alias/shared", TargetKeyId: keyId }),
        );
        const { GrantId } = await client.send(
          new CreateGrantCommand({
            KeyId: keyId,
            GranteePrincipal: `arn:aws:iam::000000000000:role/r${r}`,
            Operations: ["Encrypt", "Decrypt"],
          }),
        );
        const revoked = j % 2 === 1;
        if (revoked) await client.send(new RevokeGrantCommand({ KeyId: keyId, GrantId }));
        grants.push({ keyId, grantId: GrantId!, revoked });
      }
      // Every replica rotates the shared key: each acknowledged rotation is a version.
      await client.send(new RotateKeyOnDemandCommand({ KeyId: sharedId }));
      return { keys, grants };
    }),
  );
  const allKeys = made.flatMap((m) => m.keys);
  for (const client of clients) {
    // Listings come from each replica's cache: the watch brings the others' writes.
    await eventually(async () => {
      const listed = (await client.send(new ListKeysCommand({ Limit: 1000 }))).Keys ?? [];
      const ids = new Set(listed.map((k) => k.KeyId));
      return allKeys.every((k) => ids.has(k));
    }, "every key listed on every replica");
    const aliases = (await client.send(new ListAliasesCommand({ Limit: 100 }))).Aliases ?? [];
    for (let r = 0; r < 3; r++)
      for (let j = 0; j < PER_REPLICA; j++)
        expect(aliases.find((a) => a.AliasName === `alias/r${r}-${j}`)?.TargetKeyId).toBe(
          made[r]!.keys[j],
        );
    // The shared alias names one existing key, the last UpdateAlias of some replica.
    const target = aliases.find((a) => a.AliasName === "alias/shared")?.TargetKeyId;
    expect(allKeys).toContain(target);
    await client.send(new DescribeKeyCommand({ KeyId: "alias/shared" }));
    for (const g of made.flatMap((m) => m.grants)) {
      const listed = (await client.send(new ListGrantsCommand({ KeyId: g.keyId }))).Grants ?? [];
      expect(listed.map((l) => l.GrantId)).toEqual(g.revoked ? [] : [g.grantId]);
    }
    const rotations = await client.send(new ListKeyRotationsCommand({ KeyId: sharedId }));
    expect(rotations.Rotations).toHaveLength(3);
  }
}, 120_000);

/** A TCP proxy that hands each connection to the next replica that accepts one (a Service). */
async function roundRobin(ports: readonly number[]): Promise<{ url: string; server: Server }> {
  let next = 0;
  const server = createServer((client: Socket) => {
    client.pause();
    const attempt = (left: number) => {
      const port = ports[next++ % ports.length]!;
      const upstream = connect(port, "127.0.0.1");
      upstream.once("connect", () => {
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      upstream.once("error", () => {
        if (upstream.connecting && left > 1) attempt(left - 1);
        else client.destroy();
      });
      client.once("error", () => upstream.destroy());
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    };
    attempt(ports.length);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server };
}

it("kill -9 of one replica under load: clients with default retries see under 0.1% errors; every acknowledged ciphertext decrypts", async () => {
  const ports = replicas.map((r) => Number(new URL(r.url).port));
  const proxy = await roundRobin(ports);
  try {
    const viaProxy = () => kmsClient({ ...replicas[0]!, url: proxy.url }, { maxAttempts: 3 });
    const keyId = (await clients[0]!.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const acknowledged: { ciphertext: Uint8Array; plaintext: string }[] = [];
    let errors = 0;
    let stop = false;
    const worker = async () => {
      const client = viaProxy();
      while (!stop) {
        const plaintext = randomBytes(12).toString("hex");
        try {
          const { CiphertextBlob } = await client.send(
            new EncryptCommand({ KeyId: keyId, Plaintext: text(plaintext) }),
          );
          acknowledged.push({ ciphertext: CiphertextBlob!, plaintext });
        } catch {
          errors++;
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await eventually(() => acknowledged.length >= 200, "load running", 30_000);
    await replicas[2]!.kill();
    const atKill = acknowledged.length;
    await eventually(() => acknowledged.length >= atKill + 400, "load after the kill", 60_000);
    stop = true;
    await Promise.all(workers);
    const total = acknowledged.length + errors;
    expect(errors / total).toBeLessThan(0.001);
    const survivor = clients[0]!;
    for (const { ciphertext, plaintext } of acknowledged) {
      const { Plaintext } = await survivor.send(new DecryptCommand({ CiphertextBlob: ciphertext }));
      expect(new TextDecoder().decode(Plaintext)).toBe(plaintext);
    }
  } finally {
    proxy.server.close();
    replicas = replicas.slice(0, 2);
  }
}, 180_000);
