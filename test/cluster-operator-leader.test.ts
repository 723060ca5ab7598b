/**
 * Two `keyhaven controller` programs compete for the real Lease on the real API server,
 * each with its own ServiceAccount (the chart's operator RBAC) and its own key-service
 * credential, so the API server's audit log and the key service's audit log say who
 * did what. Only the holder writes; `kill -9` of the holder hands over within the lease
 * timing; no object is reconciled by both, none is lost, no key is made twice.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ListKeysCommand, ListResourceTagsCommand, type KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KmsKey } from "../src/api/v1alpha1/types.js";
import { ADMINISTRATOR_POLICY } from "../src/kms/authz/keyPolicy.js";
import { eventually } from "./kube/drive.js";
import { kmsKey } from "./kube/fixtures.js";
import {
  applyCrds,
  auditArgs,
  controllerIdentity,
  createObject,
  isWrite,
  kmsEnvironment,
  readAudit,
  startControllerProgram,
  waitReady,
  type ControllerProgram,
} from "./kube/realCluster.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, spawnServer, tempDir, type SpawnedServer } from "./support/server.js";

/** Short lease timing (flags of `keyhaven controller`), so a hand-over takes seconds. */
const LEASE = { duration: 4000, renew: 3000, retry: 500 };
const ADMIN_NS = "keyhaven-system";

let plane: ControlPlane;
let audit: { args: string; log: string };
let service: SpawnedServer;
let kms: KMSClient;
let kmsAudit: string;
const programs: ControllerProgram[] = [];
const credentials = ["test", "ctl-a", "ctl-b"].map((name) => ({
  name,
  accessKeyId: `AKIA${name.replace("-", "").toUpperCase()}${randomBytes(4).toString("hex").toUpperCase()}`,
  secretAccessKey: randomBytes(30).toString("base64"),
  principal: `arn:aws:iam::000000000000:user/${name}`,
}));

beforeAll(async () => {
  audit = auditArgs();
  const dir = tempDir("keyhaven-leader-");
  const credentialsFile = join(dir, "credentials.yaml");
  writeFileSync(
    credentialsFile,
    `credentials:\n${credentials
      .map(
        (c) =>
          `  - accessKeyId: ${c.accessKeyId}\n    secretAccessKey: "${c.secretAccessKey}"\n    principal: ${c.principal}\n    policies:\n      - ${ADMINISTRATOR_POLICY}\n`,
      )
      .join("")}`,
    { mode: 0o600 },
  );
  kmsAudit = join(dir, "kms-audit.log");
  [plane, service] = await Promise.all([
    startControlPlane({ apiserverArgs: audit.args }),
    spawnServer({
      dataDir: dir,
      credentials: { path: credentialsFile, credential: credentials[0]! },
      args: ["--audit-log", kmsAudit],
      timeoutMs: 60_000,
    }),
  ]);
  kms = kmsClient(service);
  await applyCrds(plane);
  await createNamespace(plane, ADMIN_NS);
}, 120_000);

afterAll(async () => {
  for (const p of programs) await p.kill();
  kms?.destroy();
  await service?.stop();
  await plane?.stop();
});

async function startReplica(
  name: "ctl-a" | "ctl-b",
): Promise<{ program: ControllerProgram; user: string }> {
  const identity = await controllerIdentity(plane, ADMIN_NS, name);
  const program = await startControllerProgram(
    [
      "--kubeconfig",
      identity.kubeconfig,
      "--namespace",
      ADMIN_NS,
      "--identity",
      name,
      "--metrics-listen",
      "127.0.0.1:0",
      "--disable-webhook",
      "--leader-elect-lease-duration",
      `${LEASE.duration}ms`,
      "--leader-elect-renew-deadline",
      `${LEASE.renew}ms`,
      "--leader-elect-retry-period",
      `${LEASE.retry}ms`,
    ],
    kmsEnvironment(
      service,
      credentials.find((c) => c.name === name)!,
    ),
  );
  programs.push(program);
  return { program, user: identity.user };
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseTransitions?: number;
  renewTime?: string;
  acquireTime?: string;
}
const lease = async () =>
  (
    (
      await plane.request(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/${ADMIN_NS}/leases/keyhaven-controller`,
      )
    ).body as { spec?: LeaseSpec }
  ).spec;

/** KMS calls by access key id, from the key service's audit log. */
function kmsCallsBy(): Map<string, number> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(kmsAudit, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n").filter(Boolean)) {
    const e = JSON.parse(line) as { userIdentity?: { accessKeyId?: string } };
    const id = e.userIdentity?.accessKeyId ?? "";
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

it("only the Lease holder writes; kill -9 hands over within the lease timing; nothing twice, nothing lost", async () => {
  const a = await startReplica("ctl-a");
  await eventually(
    async () => (await lease())?.holderIdentity === "ctl-a",
    "ctl-a to lead",
    20_000,
    100,
  );
  const b = await startReplica("ctl-b");
  const ns = await createNamespace(plane, "apps");
  for (let i = 0; i < 10; i++)
    expect((await createObject(plane, ns, kmsKey(`first-${i}`))).status).toBe(201);
  for (let i = 0; i < 10; i++) await waitReady(plane, "KmsKey", ns, `first-${i}`);
  const held = await lease();
  expect(held).toMatchObject({ holderIdentity: "ctl-a", leaseTransitions: 0 });
  // MicroTime on the wire: the real API server stores six fractional digits.
  expect(held?.renewTime).toMatch(/\.\d{6}Z$/);

  // The follower has called the key service not once while ctl-a led.
  await eventually(
    () => (kmsCallsBy().get(credentials[1]!.accessKeyId) ?? 0) >= 10,
    "ctl-a's calls in the key service's audit log",
    10_000,
    100,
  );
  expect(kmsCallsBy().get(credentials[2]!.accessKeyId)).toBeUndefined();

  // kill -9 the holder, and give the follower work while nobody leads.
  a.program.child.kill("SIGKILL");
  const killedAt = Date.now();
  await a.program.exited;
  for (let i = 0; i < 10; i++)
    expect((await createObject(plane, ns, kmsKey(`second-${i}`))).status).toBe(201);
  await eventually(
    async () => (await lease())?.holderIdentity === "ctl-b",
    "ctl-b to take over",
    20_000,
    50,
  );
  const handOverMs = Date.now() - killedAt;
  // The follower waits out the lease from its last sight of a renewal (<= one retry
  // period before the kill), then wins on its next try: lease + 2 retries at most, plus
  // a second of slack for a busy machine.
  expect(handOverMs).toBeLessThan(LEASE.duration + 2 * LEASE.retry + 1000);
  const keyIds = new Set<string>();
  for (const prefix of ["first", "second"])
    for (let i = 0; i < 10; i++)
      keyIds.add((await waitReady<KmsKey>(plane, "KmsKey", ns, `${prefix}-${i}`)).status!.keyId!);
  expect(keyIds.size).toBe(20);
  expect((await lease())?.leaseTransitions).toBe(1);

  // The API server's audit log: keyhaven objects and Events were written only by the
  // holder of the moment; ctl-b's first write comes after ctl-a's last.
  const events = readAudit(audit.log).filter(
    (e) => isWrite(e) && e.code < 300 && !e.resource.startsWith("leases"),
  );
  const byA = events.filter((e) => e.user === a.user);
  const byB = events.filter((e) => e.user === b.user);
  expect(byA.length).toBeGreaterThanOrEqual(20); // finalizer + status for each first-* key
  expect(byB.length).toBeGreaterThanOrEqual(20);
  const lastByA = Math.max(...byA.map((e) => e.at));
  const firstByB = Math.min(...byB.map((e) => e.at));
  expect(firstByB).toBeGreaterThan(lastByA);
  expect(firstByB).toBeGreaterThan(killedAt);
  // Every second-* key was made by ctl-b alone; no first-* key was touched by ctl-b but
  // for its periodic drift check (a status write only when something changed: none).
  const bNames = new Set(byB.map((e) => e.name));
  for (let i = 0; i < 10; i++) expect(bNames.has(`first-${i}`)).toBe(false);

  // The key service: exactly one key per object, each made by its holder of the moment.
  const keys = (await kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys ?? [];
  expect(keys.map((k) => k.KeyId).sort()).toEqual([...keyIds].sort());
  for (const k of keys) {
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }))).Tags ?? [];
    expect(tags.filter((t) => t.TagKey === "keyhaven.dev/uid")).toHaveLength(1);
  }
  await eventually(() => kmsCallsBy().size >= 2, "the key service's audit log", 10_000, 100);
  const calls = kmsCallsBy();
  const [, ctlA, ctlB] = credentials;
  expect(calls.get(ctlA!.accessKeyId) ?? 0).toBeGreaterThanOrEqual(10);
  expect(calls.get(ctlB!.accessKeyId) ?? 0).toBeGreaterThanOrEqual(10);
}, 120_000);
