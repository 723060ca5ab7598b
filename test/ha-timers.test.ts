/**
 * Lifecycle timers exactly once across replicas of the kubernetes store: three key
 * services (in this process, one fake clock) share a namespace of the real API server.
 * Even when all three run their due actions at the same moment (as when a timer lease
 * changes hands mid-run), a due rotation and a due deletion each happen once: the
 * rotation is a CAS on the key object, the deletion is reported by the one replica whose
 * delete removed the key. Only the Lease holder runs the loop by itself.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { TIMER_LEASE } from "../src/cmd/serveStore.js";
import { symmetricKeyRecord } from "./support/keyRecords.js";
import {
  createNamespace,
  kubernetesStoreFlags,
  startControlPlane,
  type ControlPlane,
} from "./support/kubeUp.js";
import { ManualClock } from "./support/manualClock.js";
import { startInProcess, tempDir, type InProcessServer } from "./support/server.js";

const T0 = Date.parse("2026-03-01T00:00:00Z");
let plane: ControlPlane;
let namespace: string;
const servers: InProcessServer[] = [];
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
  await plane?.stop();
});

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
