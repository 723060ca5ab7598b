import { describe, expect, it } from "vitest";
import { KubeApiError, type LeaseClient } from "../../kube/cluster.js";
import { EmbeddedApiServer } from "../../kube/embedded/apiServer.js";
import { embeddedCluster } from "../../kube/embedded/cluster.js";
import { LeaderElector } from "./leaderElection.js";
import { ManualClock } from "../../../test/support/manualClock.js";

const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("LeaderElector", () => {
  it("one leads; a cut-off leader stops within renewDeadline; the other takes over only after the lease expires", async () => {
    const clock = new ManualClock();
    const api = new EmbeddedApiServer({ clock });
    const shared = embeddedCluster(api, { timers: clock });
    let cut = false;
    const fail = () => {
      if (cut) throw new KubeApiError(503, "ServiceUnavailable", "partitioned");
    };
    const aClient: LeaseClient = {
      getLease: async (...x) => (fail(), shared.getLease(...x)),
      createLease: async (...x) => (fail(), shared.createLease(...x)),
      updateLease: async (...x) => (fail(), shared.updateLease(...x)),
    };
    const times: Record<string, number> = {};
    const a = new LeaderElector({
      client: aClient,
      namespace: "ns",
      name: "lease",
      identity: "a",
      timers: clock,
    });
    const aRun = a.run(new AbortController().signal, (leading) => {
      times["aLeads"] = clock.now().getTime();
      leading.addEventListener("abort", () => (times["aStops"] = clock.now().getTime()));
    });
    await settle();
    expect(a.isLeader).toBe(true);
    const b = new LeaderElector({
      client: shared,
      namespace: "ns",
      name: "lease",
      identity: "b",
      timers: clock,
    });
    const bStop = new AbortController();
    const bRun = b.run(bStop.signal, () => (times["bLeads"] = clock.now().getTime()));
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      await settle();
    }
    expect(b.isLeader).toBe(false);

    cut = true;
    const cutAt = clock.now().getTime();
    for (let i = 0; i < 30 && times["bLeads"] === undefined; i++) {
      clock.advance(1000);
      await settle();
    }
    expect(await aRun).toBe("lost");
    expect(times["aStops"]! - cutAt).toBeLessThanOrEqual(12_000);
    expect(times["bLeads"]).toBeGreaterThan(times["aStops"]!);
    expect(b.isLeader).toBe(true);
    const lease = await shared.getLease("ns", "lease");
    expect(lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });

    bStop.abort();
    expect(await bRun).toBe("stopped");
    expect((await shared.getLease("ns", "lease"))?.spec.holderIdentity).toBe("");
  });
});
