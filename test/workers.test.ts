/**
 * `keyhaven serve --workers 2`: two processes (node:cluster) on one listening socket and
 * one SQLite file, driven by the real AWS SDK over separate connections (the primary hands
 * connections to the workers in turn). No acknowledged write is lost, a key made through
 * one worker is usable at once through the other, a due rotation happens once (also when
 * the worker that runs the timers is killed and replaced), and the audit stream on stdout
 * has one whole JSON line per answered request, long lines included.
 */
import { Agent, get } from "node:http";
import { join } from "node:path";
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListAliasesCommand,
  ListGrantsCommand,
  ListResourceTagsCommand,
  TagResourceCommand,
  UpdateAliasCommand,
} from "@aws-sdk/client-kms";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteKeyStore } from "../src/kms/store/sqliteKeyStore.js";
import { symmetricKeyRecord } from "./support/keyRecords.js";
import { kmsClient, spawnServer, type SpawnedServer } from "./support/server.js";

let server: SpawnedServer;
const clients: KMSClient[] = [];
/** Requests that got an answer (success or a KMS error): each must have one audit line. */
let answered = 0;

/** A client with its own connection pool: each new connection goes to the next worker. */
function client(): KMSClient {
  const kms = kmsClient(server, {
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true }) }),
  });
  const send = kms.send.bind(kms) as (command: unknown) => Promise<unknown>;
  // Counts answers; a connection failure (no $metadata) is not one.
  (kms as { send: unknown }).send = async (command: unknown) => {
    try {
      const out = await send(command);
      answered++;
      return out;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode)
        answered++;
      throw err;
    }
  };
  clients.push(kms);
  return kms;
}

/** GET /metrics on a fresh connection (so on the next worker). */
function metrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${server.url}/metrics`, { agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (s: string) => (text += s));
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
}

const requestsOf = (text: string, operation: string) =>
  [...text.matchAll(/^keyhaven_kms_requests_total\{([^}]*)\} (\d+)/gm)]
    .filter((m) => m[1]!.includes(`operation="${operation}"`))
    .reduce((sum, m) => sum + Number(m[2]), 0);

interface Line {
  audit?: boolean;
  eventName?: string;
  msg?: string;
  operation?: string;
  pid?: number;
  runsTimers?: boolean;
}
const lines = (): Line[] =>
  server
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Line);

async function eventually<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  // The machine may be loaded: four Node processes start here.
  server = await spawnServer({ args: ["--workers", "2"], timeoutMs: 120_000 });
}, 150_000);

afterAll(async () => {
  for (const kms of clients) kms.destroy();
  await server?.stop();
});

describe("serve --workers 2", () => {
  it("uses a key made through one worker at once through the other", async () => {
    for (let i = 0; i < 4; i++) {
      // Three fresh connections in a row: consecutive ones land on different workers.
      const key = (await client().send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const { CiphertextBlob } = await client().send(
        new EncryptCommand({ KeyId: key, Plaintext: Buffer.from(`secret ${i}`) }),
      );
      const plain = await client().send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(plain.Plaintext!).toString()).toBe(`secret ${i}`);
      await client().send(
        new CreateAliasCommand({ AliasName: `alias/fresh-${i}`, TargetKeyId: key }),
      );
      const described = await client().send(new DescribeKeyCommand({ KeyId: `alias/fresh-${i}` }));
      expect(described.KeyMetadata!.KeyId).toBe(key);
    }
    // Each worker counts its own requests: two fresh scrapes see both, and together all.
    const [a, b] = [await metrics(), await metrics()];
    expect(requestsOf(a, "Encrypt")).toBeGreaterThan(0);
    expect(requestsOf(b, "Encrypt")).toBeGreaterThan(0);
    expect(requestsOf(a, "Encrypt") + requestsOf(b, "Encrypt")).toBe(4);
  });

  it("loses no acknowledged write of concurrent clients spread over the workers", async () => {
    const admin = client();
    const keys: string[] = [];
    for (let i = 0; i < 3; i++)
      keys.push((await admin.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!);
    await admin.send(new CreateAliasCommand({ AliasName: "alias/shared", TargetKeyId: keys[0] }));
    const tags = new Map<string, Set<string>>(keys.map((k) => [k, new Set()]));
    const aliases = new Map<string, string>();
    const grants = new Map<string, string>();
    const rotating = new Set<string>();
    const sharedTargets = new Set<string>([keys[0]!]);
    const ROUNDS = 12;
    await Promise.all(
      [0, 1, 2, 3].map(async (c) => {
        const kms = client();
        for (let j = 0; j < ROUNDS; j++) {
          const key = keys[(c + j) % keys.length]!;
          const tag = `c${c}-r${j}`;
          await kms.send(
            new TagResourceCommand({ KeyId: key, Tags: [{ TagKey: tag, TagValue: "v" }] }),
          );
          tags.get(key)!.add(tag);
          const alias = `alias/w-${tag}`;
          await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key }));
          aliases.set(alias, key);
          await kms.send(new UpdateAliasCommand({ AliasName: "alias/shared", TargetKeyId: key }));
          sharedTargets.add(key);
          const grant = await kms.send(
            new CreateGrantCommand({
              KeyId: key,
              GranteePrincipal: `arn:aws:iam::000000000000:role/${tag}`,
              Operations: ["Encrypt"],
            }),
          );
          grants.set(grant.GrantId!, key);
          if (j % 4 === 0) {
            await kms.send(new EnableKeyRotationCommand({ KeyId: key }));
            rotating.add(key);
          }
        }
      }),
    );
    const check = client();
    for (const key of keys) {
      const listed = await check.send(new ListResourceTagsCommand({ KeyId: key, Limit: 100 }));
      expect(new Set(listed.Tags!.map((t) => t.TagKey))).toEqual(tags.get(key));
      const keyGrants = await check.send(new ListGrantsCommand({ KeyId: key, Limit: 100 }));
      expect(new Set(keyGrants.Grants!.map((g) => g.GrantId))).toEqual(
        new Set([...grants].filter(([, k]) => k === key).map(([id]) => id)),
      );
      const rotation = await check.send(new GetKeyRotationStatusCommand({ KeyId: key }));
      expect(rotation.KeyRotationEnabled).toBe(rotating.has(key));
    }
    const all = (await check.send(new ListAliasesCommand({ Limit: 100 }))).Aliases!;
    for (const [alias, key] of aliases)
      expect(all.find((a) => a.AliasName === alias)?.TargetKeyId).toBe(key);
    // Every alias names exactly one existing key; the shared one the last acknowledged target of someone.
    expect(new Set(all.map((a) => a.AliasName)).size).toBe(all.length);
    const shared = all.find((a) => a.AliasName === "alias/shared")!;
    expect(sharedTargets.has(shared.TargetKeyId!)).toBe(true);
  }, 180_000);

  it("rotates a key that falls due exactly once, also after the timer worker is killed", async () => {
    // Another connection to the same file (as another process would) writes keys due soon.
    const store = new SqliteKeyStore(join(server.dataDir, "keyhaven.db"));
    const rotations = (keyId: string) =>
      server
        .output()
        .split("\n")
        .filter((l) => l.includes('"operation":"lifecycle:RotateKey"') && l.includes(keyId)).length;
    const dueKey = async (id: string) => {
      const record = symmetricKeyRecord({
        keyId: id,
        rotationEnabled: true,
        rotationPeriodInDays: 90,
        nextRotationAt: Date.now() + 1500,
      });
      await store.createKey(record, {
        keyId: id,
        version: 1,
        createdAt: Date.now(),
        wrapped: Buffer.alloc(60),
      });
    };
    const versions = async (id: string) => (await store.listMaterials(id, 10)).items.length;
    try {
      const first = "00000000-0000-4000-8000-0000000b0001";
      await dueKey(first);
      await eventually("the first rotation", () => (rotations(first) > 0 ? true : undefined));
      const timerWorker = lines().find((l) => l.msg === "worker listening" && l.runsTimers)!;
      process.kill(timerWorker.pid!, "SIGKILL");
      // Due while the timer worker is dead or starting: its replacement rotates it.
      const second = "00000000-0000-4000-8000-0000000b0002";
      await dueKey(second);
      await eventually("a new timer worker", () =>
        lines().some(
          (l) => l.msg === "worker listening" && l.runsTimers && l.pid !== timerWorker.pid,
        )
          ? true
          : undefined,
      );
      await eventually("the second rotation", () => (rotations(second) > 0 ? true : undefined));
      await new Promise((r) => setTimeout(r, 3000)); // any second rotation would show by now
      expect([rotations(first), rotations(second)]).toEqual([1, 1]);
      expect([await versions(first), await versions(second)]).toEqual([2, 2]);
      expect(
        lines().filter((l) => l.msg === "worker exited; starting another" && l.runsTimers),
      ).toHaveLength(1);
    } finally {
      await store.close();
    }
  }, 180_000);

  it("writes one whole audit line per answered request to stdout, long ones included", async () => {
    const kms = client();
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    // Four values just under the record's 2 KiB cut: lines over PIPE_BUF (4 KiB).
    const context = Object.fromEntries([1, 2, 3, 4].map((n) => [`part${n}`, `${n}`.repeat(1900)]));
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const each = client();
        for (let i = 0; i < 10; i++)
          await each.send(
            new EncryptCommand({
              KeyId: key,
              Plaintext: Buffer.from("x"),
              EncryptionContext: context,
            }),
          );
      }),
    );
    // Lines are written before each answer, into the pipe the primary copies from.
    const audit = await eventually("every audit line", () => {
      const found = lines().filter((l) => l.audit === true && l.eventName !== undefined);
      return found.length >= answered ? found : undefined;
    });
    expect(audit).toHaveLength(answered);
    const text = server.output();
    expect(
      text.split("\n").filter((l) => l.length > 4096 && l.includes('"audit":true')).length,
    ).toBe(40);
  }, 120_000);
});
