/**
 * The runtime against the real @kubernetes/client-node and a loopback HTTP fake of
 * the API server: informers that survive watch errors and 410 Gone without a hot
 * loop, and the work queue's guarantees.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "./support/manualClock.js";
import { WorkQueue } from "../src/controller/runtime/workQueue.js";
import { clientNodeCluster } from "../src/kube/clientNodeCluster.js";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import type { Cluster } from "../src/kube/cluster.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "./kube/drive.js";
import { kmsKey } from "./kube/fixtures.js";
import { kubeconfigFor, startHttpApiServer, type HttpApiServer } from "./kube/httpApiServer.js";
import { tempDir } from "./support/server.js";

let fake: HttpApiServer;
let clock: ManualClock;
let cluster: Cluster;

beforeEach(async () => {
  clock = new ManualClock(new Date());
  fake = await startHttpApiServer({ clock });
  const path = join(tempDir("keyhaven-kube-"), "kubeconfig");
  writeFileSync(path, kubeconfigFor(fake.url));
  cluster = clientNodeCluster(loadKubeConfig(path), { timers: clock });
});
afterEach(async (t) => {
  if (t.task.result?.state === "fail")
    console.log(JSON.stringify({ requests: [...fake.requests], delays: clock.pendingDelays() }));
  await fake.stop();
});

describe("informer on client-node", () => {
  it("lists, then follows the watch", async () => {
    fake.api.create("kmskeys", "a", kmsKey("one"));
    const informer = cluster.informer("KmsKey");
    const seen: string[] = [];
    informer.on((event, obj) => seen.push(`${event} ${obj.metadata.name}`));
    await informer.start();
    expect(informer.get("a", "one")?.spec.keySpec).toBe("SYMMETRIC_DEFAULT");
    fake.api.create("kmskeys", "a", kmsKey("two"));
    fake.api.delete("kmskeys", "a", "one");
    await eventually(() => seen.includes("delete one"), "delete event");
    expect(seen).toEqual(["add one", "add two", "delete one"]);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(["two"]);
    await informer.stop();
    await eventually(() => fake.api.watchers === 0, "the server to see the watch closed");
  });

  it("on 410 Gone relists, with growing backoff while it repeats (no hot loop), and catches up", async () => {
    const informer = cluster.informer("KmsKey");
    await informer.start();
    await eventually(() => fake.count("WATCH") === 1, "first watch");
    fake.api.create("kmskeys", "a", kmsKey("before"));
    await eventually(() => informer.get("a", "before"), "event on the first watch");
    fake.watchFault = () => "gone";
    fake.closeWatches();
    fake.api.create("kmskeys", "a", kmsKey("during"));
    // The watch delivered an event before it ended, so it is restarted at once, gets 410, and then waits.
    await eventually(() => clock.pendingDelays().includes(1000), "backoff armed");
    const lists = fake.count("GET list");
    const watches = fake.count("WATCH");
    expect(watches).toBe(2);
    expect(fake.count("GET list")).toBe(lists);
    clock.advance(1000);
    await eventually(() => clock.pendingDelays().includes(2000), "second backoff");
    expect(fake.count("GET list")).toBe(lists + 1);
    clock.advance(2000);
    await eventually(() => clock.pendingDelays().includes(4000), "third backoff");
    expect(fake.count("GET list")).toBe(lists + 2);
    expect(informer.stats.relistsAfterGone).toBeGreaterThanOrEqual(3);
    // The API server recovers: the next attempt relists and the watch follows changes again.
    fake.watchFault = () => undefined;
    clock.advance(4000);
    await eventually(() => informer.get("a", "during"), "object created during the outage");
    fake.api.create("kmskeys", "a", kmsKey("after"));
    await eventually(() => informer.get("a", "after"), "object created after recovery");
    await informer.stop();
  });

  it("a watch answered with HTTP 500 backs off and retries instead of stopping (client-node's ListWatch would stop)", async () => {
    const informer = cluster.informer("KmsKey");
    await informer.start();
    fake.watchFault = () => "error500";
    fake.closeWatches();
    // An empty ending backs off 1 s; the next watch gets a 500, counted as an error, and backs off 2 s.
    await eventually(() => clock.pendingDelays().includes(1000), "backoff after the empty ending");
    clock.advance(1000);
    await eventually(
      () => informer.stats.errors > 0 && clock.pendingDelays().includes(2000),
      "backoff after 500",
    );
    const watches = fake.count("WATCH");
    expect(fake.count("WATCH")).toBe(watches);
    fake.watchFault = () => undefined;
    clock.advance(2000);
    fake.api.create("kmskeys", "b", kmsKey("later"));
    await eventually(() => informer.get("b", "later"), "object after the 500s");
    await informer.stop();
  });

  it("a watch that hangs is cut by the client-side watchdog and re-established", async () => {
    const informer = cluster.informer("KmsKey");
    await informer.start();
    await eventually(() => fake.count("WATCH") === 1, "first watch");
    // Nothing arrives for longer than timeoutSeconds + grace: the informer aborts and re-watches.
    clock.advance((300 + 30) * 1000);
    await eventually(() => clock.pendingDelays().includes(1000), "a short backoff after the cut");
    clock.advance(1000);
    await eventually(() => fake.count("WATCH") === 2, "second watch");
    fake.api.create("kmskeys", "c", kmsKey("x"));
    await eventually(() => informer.get("c", "x"), "event on the new watch");
    await informer.stop();
  });
});

describe("work queue", () => {
  it("de-duplicates, never hands out a key being processed, and re-queues it after done", async () => {
    const q = new WorkQueue({ timers: clock });
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe("a");
    q.add("a"); // while processing: held back
    expect(await q.get()).toBe("b");
    expect(q.length).toBe(0);
    q.done("a");
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("addAfter keeps the earliest delay; rate-limited retries back off exponentially until forgotten", async () => {
    const q = new WorkQueue({ timers: clock });
    q.addAfter("k", 10_000);
    q.addAfter("k", 5_000);
    q.addAfter("k", 20_000);
    expect(clock.pendingDelays()).toEqual([5_000]);
    clock.advance(5_000);
    expect(q.length).toBe(1);
    await q.get();
    q.done("k");
    q.addRateLimited("k");
    q.addRateLimited("k");
    q.addRateLimited("k");
    expect(q.retries("k")).toBe(3);
    q.forget("k");
    expect(q.retries("k")).toBe(0);
    q.shutDown();
    expect(await q.get()).toBeUndefined();
  });
});
