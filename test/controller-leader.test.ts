/**
 * Two controllers on the real client-node against the loopback fake API server and
 * the real key service: they compete for the Lease, only the leader reconciles, the
 * leader is cut off (partitioned) and stops work at once, the other takes over, and
 * every KmsKey ends Ready with exactly one key each — nothing reconciled twice at
 * once, nothing lost, nothing duplicated.
 */
import { ListKeysCommand, type KMSClient } from "@aws-sdk/client-kms";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isReady } from "../src/api/v1alpha1/conditions.js";
import type { KindName, KmsKey } from "../src/api/v1alpha1/types.js";
import { countKmsCalls } from "../src/controller/kms.js";
import { Manager } from "../src/controller/manager.js";
import { ControllerMetrics } from "../src/controller/runtime/metrics.js";
import { ManualClock } from "./support/manualClock.js";
import { clientNodeCluster } from "../src/kube/clientNodeCluster.js";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { KubeApiError, type Cluster } from "../src/kube/cluster.js";
import { driveUntil } from "./kube/drive.js";
import { kmsKey } from "./kube/fixtures.js";
import { kubeconfigFor, startHttpApiServer, type HttpApiServer } from "./kube/httpApiServer.js";
import { kmsClient, startInProcess, tempDir, type InProcessServer } from "./support/server.js";

let fake: HttpApiServer;
let service: InProcessServer;
let clock: ManualClock;
let kubeconfig: string;

beforeEach(async () => {
  clock = new ManualClock(new Date());
  fake = await startHttpApiServer({ clock });
  service = await startInProcess();
  kubeconfig = join(tempDir("keyhaven-kube-"), "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigFor(fake.url));
});
afterEach(async () => {
  await fake.stop();
  await service.stop();
});

/** A cluster connection that can be cut (lease and writes fail, as in a network partition). */
function partitionable(cluster: Cluster): Cluster & { cut: boolean } {
  const handle = { cut: false } as Cluster & { cut: boolean };
  const fail = () => {
    if (handle.cut) throw new KubeApiError(503, "ServiceUnavailable", "partitioned");
  };
  return Object.assign(handle, {
    get: async (...a: Parameters<Cluster["get"]>) => (fail(), cluster.get(...a)),
    setFinalizers: async (...a: Parameters<Cluster["setFinalizers"]>) => (
      fail(),
      cluster.setFinalizers(...a)
    ),
    patchStatus: async (...a: Parameters<Cluster["patchStatus"]>) => (
      fail(),
      cluster.patchStatus(...a)
    ),
    recordEvent: async (...a: Parameters<Cluster["recordEvent"]>) => (
      fail(),
      cluster.recordEvent(...a)
    ),
    getLease: async (...a: Parameters<Cluster["getLease"]>) => (fail(), cluster.getLease(...a)),
    createLease: async (...a: Parameters<Cluster["createLease"]>) => (
      fail(),
      cluster.createLease(...a)
    ),
    updateLease: async (...a: Parameters<Cluster["updateLease"]>) => (
      fail(),
      cluster.updateLease(...a)
    ),
    informer: cluster.informer.bind(cluster),
  });
}

it("two controllers compete for the Lease; when the leader is cut off the other takes over; nothing is reconciled twice at once or lost", async () => {
  const inFlight = new Map<string, string>();
  const violations: string[] = [];
  const reconciled = { a: 0, b: 0 };
  let aLostAt: number | undefined;
  let bStartedAt: number | undefined;
  const replicas: {
    id: "a" | "b";
    cluster: Cluster & { cut: boolean };
    kms: KMSClient;
    manager: Manager;
    metrics: ControllerMetrics;
    stop: AbortController;
    outcome?: string;
    calls: Map<string, number>;
  }[] = [];
  for (const id of ["a", "b"] as const) {
    const cluster = partitionable(clientNodeCluster(loadKubeConfig(kubeconfig), { timers: clock }));
    const kms = kmsClient(service);
    const calls = countKmsCalls(kms);
    const metrics = new ControllerMetrics();
    const manager = new Manager({
      cluster,
      kms,
      timers: clock,
      metrics,
      leaderElection: { namespace: "keyhaven-system", identity: id },
      around: async (kind: KindName, key: string, run) => {
        const k = `${kind}/${key}`;
        if (inFlight.has(k)) violations.push(`${k} by ${id} while ${inFlight.get(k)} had it`);
        inFlight.set(k, id);
        reconciled[id]++;
        if (id === "b") bStartedAt ??= clock.now().getTime();
        try {
          return await run();
        } finally {
          inFlight.delete(k);
        }
      },
    });
    replicas.push({ id, cluster, kms, manager, metrics, stop: new AbortController(), calls });
  }
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  const ready = (n: number) => {
    const items = fake.api.list("kmskeys").items as unknown as KmsKey[];
    return items.length === n && items.every((k) => isReady(k.status?.conditions));
  };

  for (let i = 0; i < 20; i++) fake.api.create("kmskeys", `ns${i % 3}`, kmsKey(`k${i}`));
  const aRun = a.manager.run(a.stop.signal).then((o) => {
    a.outcome = o;
    aLostAt = clock.now().getTime();
  });
  await driveUntil(clock, 500, () => a.manager.isLeader, "a to lead");
  const bRun = b.manager.run(b.stop.signal).then((o) => (b.outcome = o));
  await driveUntil(clock, 500, () => ready(20), "20 keys Ready");
  expect(b.manager.isLeader).toBe(false);
  expect(reconciled.b).toBe(0);

  // Cut the leader off; add work while nobody can lead.
  a.cluster.cut = true;
  for (let i = 20; i < 30; i++) fake.api.create("kmskeys", `ns${i % 3}`, kmsKey(`k${i}`));
  await driveUntil(clock, 500, () => a.outcome === "lost", "a to give up the lease");
  const aCallsAtLoss = [...a.calls.values()].reduce((x, y) => x + y, 0);
  await driveUntil(clock, 500, () => ready(30), "30 keys Ready under b");
  expect(b.manager.isLeader).toBe(true);
  expect(bStartedAt).toBeGreaterThanOrEqual(aLostAt!);
  // a sent nothing to the key service after it lost the lease.
  expect([...a.calls.values()].reduce((x, y) => x + y, 0)).toBe(aCallsAtLoss);
  expect(violations).toEqual([]);
  const keys = await b.kms.send(new ListKeysCommand({ Limit: 1000 }));
  expect(keys.Keys).toHaveLength(30);
  const lease = fake.api.get("leases", "keyhaven-system", "keyhaven-controller") as unknown as {
    spec: { holderIdentity: string; leaseTransitions: number };
  };
  expect(lease.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  const metrics = await b.metrics.registry.metrics();
  expect(metrics).toMatch(
    /keyhaven_controller_reconcile_total\{controller="kmskey",result="requeue_after"\} \d+/,
  );
  expect(metrics).toMatch(/keyhaven_controller_is_leader 1/);

  b.stop.abort();
  await driveUntil(clock, 500, () => b.outcome === "stopped", "b to stop");
  await Promise.all([aRun, bRun]);
  const released = fake.api.get("leases", "keyhaven-system", "keyhaven-controller") as unknown as {
    spec: { holderIdentity: string };
  };
  expect(released.spec.holderIdentity).toBe("");
  a.kms.destroy();
  b.kms.destroy();
});
