/**
 * Lifecycle timers exactly once across replicas of the kubernetes store on the real API
 * server. First three key services in this process (one fake clock): even when all three
 * run their due actions at the same moment (as when a timer lease changes hands mid-run), a
 * due rotation and a due deletion each happen once: the rotation is a CAS on the key
 * object, the deletion is reported by the one replica whose delete removed the key. Then
 * three `keyhaven serve` processes: rotations and deletions fall due together (written
 * due a few seconds ahead on the real clock), the Lease holder is killed with SIGKILL
 * once it has done some of them, and another replica takes the Lease and finishes: every
 * key rotated exactly once (two material versions, one audit line), every due key deleted
 * once with its alias and grant (nothing half done).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TIMER_LEASE } from "../src/cmd/serveStore.js";
import type { KeyRecord } from "../src/kms/keys/keyRecord.js";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { storeSecrets } from "../src/kube/storeSecrets.js";
import { KEY_ID_LABEL, KubernetesKeyStore } from "../src/kubestore/kubernetesKeyStore.js";
import { eventually } from "./kube/drive.js";
import { symmetricKeyRecord } from "./support/keyRecords.js";
import {
  createNamespace,
  kubernetesStoreFlags,
  startControlPlane,
  type ControlPlane,
} from "./support/kubeUp.js";
import { ManualClock } from "./support/manualClock.js";
import {
  spawnReplicas,
  startInProcess,
  tempDir,
  type InProcessServer,
  type SpawnedServer,
} from "./support/server.js";

const T0 = Date.parse("2026-03-01T00:00:00Z");
let plane: ControlPlane;
let namespace: string;
const servers: InProcessServer[] = [];
const processes: SpawnedServer[] = [];
const clock = new ManualClock(new Date(T0));

beforeAll(async () => {
  plane = await startControlPlane();
  namespace = await createNamespace(plane, "keyhaven-timers");
  const dataDir = tempDir("keyhaven-ha-timers-");
  const args = kubernetesStoreFlags(plane, namespace);
  for (let i = 0; i < 3; i++) servers.push(await startInProcess({ dataDir, clock, args }));
}, 180_000);

afterAll(async () => {
  for (const s of servers) await s.stop();
  await Promise.all(processes.map((p) => p.stop()));
  await plane?.stop();
});

const timerLease = async (ns: string) => {
  const lease = await plane.request(
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${TIMER_LEASE}`,
  );
  return lease.status === 200
    ? (lease.body as { spec: { holderIdentity?: string } }).spec.holderIdentity
    : undefined;
};

it("a due rotation and a due deletion happen once though all three replicas act at once", async () => {
  const store = servers[0]!.running.service.store;
  const rotating = symmetricKeyRecord({
    keyId: "00000000-0000-4000-8000-00000000a001",
    rotationEnabled: true,
    rotationPeriodInDays: 90,
    nextRotationAt: T0 + 1000,
  });
  const deleting = symmetricKeyRecord({
    keyId: "00000000-0000-4000-8000-00000000a002",
    state: "PendingDeletion",
    deletionDate: T0 + 1000,
    pendingWindowInDays: 7,
  });
  for (const k of [rotating, deleting])
    await store.createKey(k, {
      keyId: k.keyId,
      version: 1,
      createdAt: T0,
      wrapped: Buffer.alloc(60),
    });
  // Every replica sees both keys (a miss reads through), then all act together.
  for (const s of servers)
    expect(await s.running.service.store.getKey(deleting.keyId)).toBeDefined();
  clock.set(T0 + 2000);
  await Promise.all(servers.map((s) => s.running.lifecycle.check()));
  const count = (op: string) =>
    servers
      .map(
        (s) =>
          s
            .output()
            .split("\n")
            .filter((l) => l.includes(`"operation":"lifecycle:${op}"`)).length,
      )
      .reduce((a, b) => a + b, 0);
  expect(count("RotateKey")).toBe(1);
  expect(count("DeleteKey")).toBe(1);
  expect((await store.updateKey(rotating.keyId, (c) => c))?.currentMaterialVersion).toBe(2);
  expect((await store.listMaterials(rotating.keyId, 10)).items).toHaveLength(2);
  expect(await store.getKey(deleting.keyId)).toBeUndefined();
  // One replica holds the timer lease.
  const lease = await plane.request(
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${TIMER_LEASE}`,
  );
  expect(lease.status).toBe(200);
  expect((lease.body as { spec: { holderIdentity: string } }).spec.holderIdentity).not.toBe("");
});

it("kill -9 of the timer Lease holder mid-run: every due rotation and deletion happens exactly once, nothing half done", async () => {
  const ns = await createNamespace(plane, "keyhaven-timers-kill");
  processes.push(
    ...(await spawnReplicas(3, kubernetesStoreFlags(plane, ns), "keyhaven-ha-timers-kill-")),
  );
  const observer = await KubernetesKeyStore.open(
    storeSecrets(loadKubeConfig(plane.kubeconfig), ns),
  );
  try {
    // Due a little ahead on the real clock, so that all fall due together after seeding.
    const N = 25;
    const dueAt = Date.now() + 25_000;
    const rotating: KeyRecord[] = [];
    const deleting: KeyRecord[] = [];
    for (let i = 0; i < N; i++) {
      rotating.push(
        symmetricKeyRecord({
          keyId: randomUUID(),
          createdAt: dueAt - 90 * 86_400_000,
          rotationEnabled: true,
          rotationPeriodInDays: 90,
          nextRotationAt: dueAt,
        }),
      );
      deleting.push(
        symmetricKeyRecord({
          keyId: randomUUID(),
          createdAt: dueAt - 8 * 86_400_000,
          state: "PendingDeletion",
          deletionDate: dueAt,
          pendingWindowInDays: 7,
        }),
      );
    }
    const seed = async (k: KeyRecord, i: number) => {
      await observer.createKey(k, {
        keyId: k.keyId,
        version: 1,
        createdAt: k.createdAt,
        wrapped: randomBytes(61),
      });
      if (k.state !== "PendingDeletion") return;
      await observer.createAlias({
        name: `alias/doomed-${i}`,
        targetKeyId: k.keyId,
        createdAt: k.createdAt,
        updatedAt: k.createdAt,
      });
      await observer.createGrant({
        grantId: randomBytes(32).toString("hex"),
        keyId: k.keyId,
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        issuingAccount: "arn:aws:iam::000000000000:root",
        operations: ["Decrypt"],
        createdAt: k.createdAt,
      });
    };
    await Promise.all([...rotating, ...deleting].map((k, i) => seed(k, i % N)));
    expect(Date.now()).toBeLessThan(dueAt); // seeding must finish before the keys fall due
    const holder = await eventually(() => timerLease(ns), "a timer Lease holder", 30_000, 200);
    const pid = Number(/-(\d+)-[0-9a-f]{8}$/.exec(holder)?.[1]);
    const leader = processes.find((p) => p.process.pid === pid);
    expect(leader).toBeDefined();
    // The observer's cache follows the watch: kill the holder once it has done something.
    const done = async () => {
      const cached = new Map((await observer.listKeys(4 * N)).items.map((k) => [k.keyId, k]));
      return (
        rotating.filter((k) => cached.get(k.keyId)?.currentMaterialVersion === 2).length +
        deleting.filter((k) => !cached.has(k.keyId)).length
      );
    };
    await eventually(async () => (await done()) > 0, "the first due action", 60_000, 2);
    await leader!.kill();
    const doneAtKill = await done();
    expect(doneAtKill).toBeLessThan(2 * N); // the holder died mid-run
    const next = await eventually(
      async () => ((await timerLease(ns)) ?? holder) !== holder && timerLease(ns),
      "another replica takes the Lease",
      60_000,
      500,
    );
    expect(next).not.toBe(holder);
    const dependents = async (keyId: string) =>
      (
        (
          await plane.request(
            "GET",
            `/api/v1/namespaces/${ns}/secrets?labelSelector=${encodeURIComponent(`${KEY_ID_LABEL}=${keyId}`)}`,
          )
        ).body as { items: unknown[] }
      ).items.length;
    await eventually(
      async () => {
        if ((await done()) < 2 * N) return false;
        for (const k of deleting) if ((await dependents(k.keyId)) > 0) return false;
        return true;
      },
      "every due action done and every dependent removed",
      90_000,
      500,
    );
    // Read back from the API server by a fresh store: the state, not a cache.
    const fresh = await KubernetesKeyStore.open(storeSecrets(loadKubeConfig(plane.kubeconfig), ns));
    try {
      for (const k of rotating) {
        expect((await fresh.getKey(k.keyId))?.currentMaterialVersion).toBe(2);
        const versions = (await fresh.listMaterials(k.keyId, 10)).items;
        expect(versions.map((m) => [m.version, m.rotationType ?? null])).toEqual([
          [1, null],
          [2, "AUTOMATIC"],
        ]);
        expect((await fresh.getKey(k.keyId))?.nextRotationAt).toBeGreaterThan(dueAt);
      }
      for (const k of deleting) {
        expect(await fresh.getKey(k.keyId)).toBeUndefined();
        expect(await fresh.aliasesOf(k.keyId)).toEqual([]);
        expect(await fresh.grantsOf(k.keyId)).toEqual([]);
      }
      expect((await fresh.listAliases(100)).items).toEqual([]);
    } finally {
      await fresh.close();
    }
    // Audit (stdout, written synchronously): never two lines for one key; a line can be
    // missing only for the action the killed holder had written but not yet logged.
    const lines = processes.flatMap((p) =>
      p
        .output()
        .split("\n")
        .filter((l) => l.includes('"operation":"lifecycle:')),
    );
    const audited = (op: string, k: KeyRecord) =>
      lines.filter((l) => l.includes(`"operation":"lifecycle:${op}"`) && l.includes(k.arn)).length;
    const counts = [
      ...rotating.map((k) => audited("RotateKey", k)),
      ...deleting.map((k) => audited("DeleteKey", k)),
    ];
    expect(Math.max(...counts)).toBe(1);
    expect(counts.filter((c) => c === 0).length).toBeLessThanOrEqual(1);
  } finally {
    await observer.close();
  }
}, 300_000);
