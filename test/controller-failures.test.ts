/**
 * One failure path for the three kinds, against the in-memory API server and the
 * real key service: the failure in status, one Warning Event however often the same
 * failure repeats, and the error back to the queue (terminal for a spec error).
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import { harness, kmsAlias, kmsGrant, kmsKey, type Harness } from "./kube/fixtures.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.stop();
});

const MISSING = "11111111-2222-3333-4444-555555555555";
const warnings = (name: string) => h.events(name).filter((e) => e.type === "Warning");

it.each([
  {
    kind: "KmsKey",
    make: () => h.create({ ...kmsKey("bad"), spec: { policy: "{not json" } }),
    reconcile: (key: string) => h.keys.reconcile(key),
    conditions: () => h.key("bad").status?.conditions,
    reason: "MalformedPolicyDocumentException",
    shown: ["Synced", "Ready"],
  },
  {
    kind: "KmsAlias",
    make: () => h.create(kmsAlias("bad", { name: "alias/bad", targetKeyId: MISSING })),
    reconcile: (key: string) => h.aliases.reconcile(key),
    conditions: () => h.alias("bad").status?.conditions,
    reason: "TargetNotFound",
    shown: ["Ready"],
  },
  {
    kind: "KmsGrant",
    make: () =>
      h.create(
        kmsGrant("bad", {
          keyId: MISSING,
          granteePrincipal: "arn:aws:iam::000000000000:role/app",
          operations: ["Decrypt"],
        }),
      ),
    reconcile: (key: string) => h.grants.reconcile(key),
    conditions: () => h.grant("bad").status?.conditions,
    reason: "KeyNotFound",
    shown: ["Ready"],
  },
])(
  "$kind: the failure is a condition and one Warning Event, however often it repeats",
  async ({ make, reconcile, conditions, reason, shown }) => {
    const key = make();
    for (let i = 0; i < 3; i++)
      await expect(reconcile(key)).rejects.toMatchObject({ name: "TerminalError", reason });
    for (const type of shown)
      expect(findCondition(conditions(), type)).toMatchObject({
        status: "False",
        reason,
      });
    expect(warnings("bad")).toEqual([
      { type: "Warning", reason, message: expect.stringMatching(/\S/) as unknown },
    ]);
  },
);

it("a retryable failure (key service down) is recorded and goes back to the queue as an error", async () => {
  const key = h.create(kmsKey("later"));
  await h.service.stop();
  const err: unknown = await h.keys.reconcile(key).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).name).not.toBe("TerminalError");
  const ready = findCondition(h.key("later").status?.conditions, "Ready");
  expect(ready?.status).toBe("False");
  expect(ready?.reason).toBe("KeyServiceUnavailable");
  expect(ready?.message).toContain((err as Error).message);
  expect(warnings("later").map((e) => e.reason)).toEqual(["KeyServiceUnavailable"]);
});
