/**
 * What wakes a reconciler besides its own objects, through the Manager on the
 * in-memory API server and the real key service: a KmsAlias and a KmsGrant waiting on
 * a KmsKey are woken by it (the fake clock never moves, so no requeue timer can be
 * what wakes them), and an object that stops referring to a key is no longer woken by it.
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import type { Condition, KindName } from "../src/api/v1alpha1/types.js";
import { Manager } from "../src/controller/manager.js";
import { eventually } from "./kube/drive.js";
import { harness, kmsAlias, kmsGrant, kmsKey, NS, type Harness } from "./kube/fixtures.js";

let h: Harness;
let manager: Manager;
let stop: AbortController;
let running: Promise<unknown>;
const runs = new Map<string, number>();

beforeEach(async () => {
  h = await harness();
  runs.clear();
  manager = new Manager({
    cluster: h.cluster,
    kms: h.kms,
    timers: h.clock,
    leaderElection: false,
    around: async (kind: KindName, key: string, run) => {
      const result = await run();
      runs.set(`${kind}/${key}`, (runs.get(`${kind}/${key}`) ?? 0) + 1);
      return result;
    },
  });
  stop = new AbortController();
  running = manager.run(stop.signal);
});
afterEach(async () => {
  stop.abort();
  await running;
  await h.stop();
});

const ready = (conditions: Condition[] | undefined) => findCondition(conditions, "Ready");
const aliasReady = () => ready(h.alias("app").status?.conditions);
const grantReady = () => ready(h.grant("app").status?.conditions);
/** Every controller has nothing queued or running (timers aside). */
const idle = () =>
  Object.values(manager.controllers).every((c) => c.queue.length === 0 && c.inFlight === 0);

it("a KmsKey getting its key wakes the aliases and grants waiting on it; one no longer referring to it is not woken", async () => {
  h.create(kmsAlias("app", { targetKeyRef: { name: "k" } }));
  h.create(
    kmsGrant("app", {
      keyRef: { name: "k" },
      granteePrincipal: "arn:aws:iam::000000000000:role/app",
      operations: ["Decrypt"],
    }),
  );
  await eventually(
    () => aliasReady()?.reason === "TargetNotReady" && grantReady()?.reason === "KeyNotReady",
    "both waiting on the KmsKey",
  );

  h.create(kmsKey("k"));
  await eventually(
    () => aliasReady()?.status === "True" && grantReady()?.status === "True",
    "alias and grant Ready, woken by the key",
  );
  expect(h.alias("app").status?.targetKeyId).toBe(h.key("k").status?.keyId);

  // The alias now refers to k2: k's changes wake the grant only.
  h.api.patch("kmsaliases", NS, "app", "merge", { spec: { targetKeyRef: { name: "k2" } } });
  await eventually(() => aliasReady()?.reason === "TargetNotReady", "the alias waiting on k2");
  await eventually(idle, "the controllers idle");
  const aliasRuns = runs.get(`KmsAlias/${NS}/app`);
  const grantRuns = runs.get(`KmsGrant/${NS}/app`) ?? 0;
  h.api.delete("kmskeys", NS, "k");
  await eventually(() => grantReady()?.reason === "KeyNotReady", "the grant seeing k deleted");
  await eventually(idle, "the controllers idle");
  expect(runs.get(`KmsGrant/${NS}/app`)).toBeGreaterThan(grantRuns);
  expect(runs.get(`KmsAlias/${NS}/app`)).toBe(aliasRuns);

  h.create(kmsKey("k2"));
  await eventually(() => aliasReady()?.status === "True", "the alias Ready on k2");
  expect(h.alias("app").status?.targetKeyId).toBe(h.key("k2").status?.keyId);
  expect(h.clock.now().toISOString()).toBe("2026-03-01T00:00:00.000Z");
});
