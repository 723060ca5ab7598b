/** The real control plane starts, and client-node's kubeconfig works against it. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await startControlPlane();
});
afterAll(async () => {
  await plane?.stop();
});

it("serves the core API and refuses what the schema refuses", async () => {
  await createNamespace(plane, "smoke", { team: "a" });
  const ns = await plane.request("GET", "/api/v1/namespaces/smoke");
  expect(ns.status).toBe(200);
  expect((ns.body as { metadata: { labels: Record<string, string> } }).metadata.labels.team).toBe(
    "a",
  );
  // A Lease with millisecond times is refused: renewTime is a MicroTime (six digits).
  const lease = await plane.request(
    "POST",
    "/apis/coordination.k8s.io/v1/namespaces/smoke/leases",
    {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "x" },
      spec: { holderIdentity: "a", renewTime: "2026-12-02T03:19:52.980Z" },
    },
  );
  expect(lease.status).toBe(400);
});
