import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveKeySpec } from "../../api/v1alpha1/defaults.js";
import type { KmsKeySpec } from "../../api/v1alpha1/types.js";
import { UID_TAG } from "../../api/v1alpha1/types.js";
import { planKey, requeueAfter, samePolicy, type ObservedKey } from "./decide.js";

const DAY = 86_400_000;
const now = new Date("2026-05-01T00:00:00Z");

/** A key exactly as `spec` asks (what a finished reconcile leaves behind). */
function keyFor(spec: KmsKeySpec, uid = "u1", extra: Partial<ObservedKey> = {}): ObservedKey {
  const s = resolveKeySpec(spec);
  return {
    keyId: "k",
    arn: "arn:aws:kms:us-east-1:000000000000:key/k",
    state: s.deletion.requested ? "PendingDeletion" : s.enabled ? "Enabled" : "Disabled",
    description: s.description,
    keySpec: s.keySpec,
    keyUsage: s.keyUsage,
    origin: s.origin,
    ...(s.customKeyStoreId !== undefined && { customKeyStoreId: s.customKeyStoreId }),
    ...(s.xksKeyId !== undefined && { xksKeyId: s.xksKeyId }),
    rotation: { enabled: s.rotation.enabled, periodDays: s.rotation.periodDays },
    tags: { ...s.tags, [UID_TAG]: uid },
    ...(s.policy !== undefined && { policy: s.policy }),
    ...extra,
  };
}

const specArb: fc.Arbitrary<KmsKeySpec> = fc.record(
  {
    description: fc.string({ maxLength: 20 }),
    enabled: fc.boolean(),
    rotation: fc.record({ enabled: fc.boolean(), periodDays: fc.integer({ min: 90, max: 2560 }) }),
    tags: fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 8 }), {
      maxKeys: 5,
    }),
  },
  { requiredKeys: [] },
);

describe("planKey", () => {
  it("a key that matches its spec needs nothing (property)", () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const plan = planKey(resolveKeySpec(spec), keyFor(spec), "u1", undefined);
        expect(
          plan.actions.filter((a) => a.op !== "EnableKeyRotation" && a.op !== "DisableKeyRotation"),
        ).toEqual([]);
        // Rotation settings of a disabled key wait until it is enabled, and are not re-sent when equal.
        if (spec.enabled !== false) expect(plan.actions).toEqual([]);
      }),
    );
  });

  it("a disabled key whose spec wants it enabled is enabled before rotation is turned on", () => {
    const spec = resolveKeySpec({ rotation: { enabled: true, periodDays: 180 } });
    const plan = planKey(spec, keyFor({}, "u1", { state: "Disabled" }), "u1", undefined);
    expect(plan.actions.map((a) => a.op)).toEqual(["EnableKey", "EnableKeyRotation"]);
  });

  it("cancelling a deletion comes first, then the key is enabled again", () => {
    const plan = planKey(
      resolveKeySpec({}),
      keyFor({}, "u1", { state: "PendingDeletion" }),
      "u1",
      undefined,
    );
    expect(plan.actions.map((a) => a.op)).toEqual(["CancelKeyDeletion", "EnableKey"]);
  });

  it("requested deletion schedules it with the window and nothing else", () => {
    const plan = planKey(
      resolveKeySpec({ deletion: { requested: true, pendingWindowDays: 9 }, description: "x" }),
      keyFor({}),
      "u1",
      undefined,
    );
    expect(plan.actions).toEqual([{ op: "ScheduleKeyDeletion", pendingWindowDays: 9 }]);
  });

  it("tags: adds, changes and removes to match, keeping the UID tag", () => {
    const plan = planKey(
      resolveKeySpec({ tags: { a: "2", c: "3" } }),
      keyFor({ tags: { a: "1", b: "x" } }),
      "u1",
      undefined,
    );
    expect(plan.actions).toEqual([
      { op: "TagResource", tags: { a: "2", c: "3" } },
      { op: "UntagResource", keys: ["b"] },
    ]);
  });

  it("immutable fields that differ are reported, never 'fixed'", () => {
    const plan = planKey(resolveKeySpec({ keySpec: "HMAC_256" }), keyFor({}), "u1", undefined);
    expect(plan.immutableMismatch).toEqual([
      "keySpec (SYMMETRIC_DEFAULT → HMAC_256)",
      "keyUsage (ENCRYPT_DECRYPT → GENERATE_VERIFY_MAC)",
    ]);
  });

  it("a key in a custom key store stays there: another customKeyStoreId is a mismatch, nothing is done", () => {
    const inStore = { origin: "AWS_CLOUDHSM", customKeyStoreId: "cks-0123456789abcdef0" };
    expect(planKey(resolveKeySpec(inStore), keyFor(inStore), "u1", undefined)).toMatchObject({
      actions: [],
      immutableMismatch: [],
    });
    const moved = resolveKeySpec({ ...inStore, customKeyStoreId: "cks-11111111111111111" });
    expect(planKey(moved, keyFor(inStore), "u1", undefined).immutableMismatch).toEqual([
      "customKeyStoreId (cks-0123456789abcdef0 → cks-11111111111111111)",
    ]);
  });

  it("a key in an external key store keeps its external key: another xksKeyId is a mismatch", () => {
    const xks = {
      origin: "EXTERNAL_KEY_STORE",
      customKeyStoreId: "cks-0123456789abcdef0",
      xksKeyId: "external-key-1",
    };
    expect(planKey(resolveKeySpec(xks), keyFor(xks), "u1", undefined)).toMatchObject({
      actions: [],
      immutableMismatch: [],
    });
    const moved = resolveKeySpec({ ...xks, xksKeyId: "external-key-2" });
    expect(planKey(moved, keyFor(xks), "u1", undefined).immutableMismatch).toEqual([
      "xksKeyId (external-key-1 → external-key-2)",
    ]);
  });

  it("on-demand rotation runs once per new request value", () => {
    const spec = resolveKeySpec({ rotation: { rotateOnDemandRequest: "2026-05-01" } });
    expect(planKey(spec, keyFor({}), "u1", undefined).actions).toEqual([
      { op: "RotateKeyOnDemand", request: "2026-05-01" },
    ]);
    expect(planKey(spec, keyFor({}), "u1", "2026-05-01").actions).toEqual([]);
  });

  it("policies compare by meaning, not by formatting", () => {
    expect(samePolicy('{"a":1,"b":[1,2]}', '{\n  "b": [1, 2],\n  "a": 1\n}')).toBe(true);
    expect(samePolicy('{"a":1}', '{"a":2}')).toBe(false);
  });
});

describe("requeueAfter", () => {
  it("is the drift check, or the rotation date when sooner, or only the deletion date while pending deletion", () => {
    const base = keyFor({});
    expect(requeueAfter(base, now, 600_000)).toBe(600_000);
    const rotating = {
      ...base,
      rotation: {
        enabled: true,
        periodDays: 90,
        nextRotationDate: new Date(now.getTime() + 60_000),
      },
    };
    expect(requeueAfter(rotating, now, 600_000)).toBe(61_000);
    const pending = {
      ...base,
      state: "PendingDeletion",
      deletionDate: new Date(now.getTime() + 7 * DAY),
    };
    expect(requeueAfter(pending, now, 600_000)).toBe(7 * DAY + 1000);
  });

  it("never asks for a past or zero delay (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -30 * DAY, max: 30 * DAY }), (offset) => {
        const pending = { ...keyFor({}), deletionDate: new Date(now.getTime() + offset) };
        expect(requeueAfter(pending, now, 600_000)).toBeGreaterThanOrEqual(5000);
      }),
    );
  });
});
