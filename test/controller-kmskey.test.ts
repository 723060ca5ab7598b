/**
 * KmsKey reconciler against the in-memory API server and the real key service,
 * one ManualClock driving both (rotation and deletion dates).
 */
import {
  DescribeKeyCommand,
  DisableKeyCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
} from "@aws-sdk/client-kms";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import { FINALIZER, UID_TAG } from "../src/api/v1alpha1/types.js";
import {
  DAY,
  harness,
  kmsKey,
  NS,
  withDeletion,
  withDescription,
  withRotation,
  withTags,
  type Harness,
} from "./kube/fixtures.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.stop();
});

const countKeys = async () => (await h.kms.send(new ListKeysCommand({}))).Keys?.length ?? 0;

describe("KmsKey", () => {
  it("creates the key, adds the finalizer and mirrors the key into status with Ready", async () => {
    const key = h.create(kmsKey("orders", withDescription("orders data"), withTags({ team: "a" })));
    const result = await h.keys.reconcile(key);
    const obj = h.key("orders");
    expect(obj.metadata.finalizers).toContain(FINALIZER);
    expect(obj.status?.keyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(obj.status?.arn).toBe(`arn:aws:kms:us-east-1:000000000000:key/${obj.status?.keyId}`);
    expect(obj.status?.keyState).toBe("Enabled");
    expect(obj.status?.observedGeneration).toBe(obj.metadata.generation);
    expect(obj.status?.currentVersion).toBe(1);
    expect(findCondition(obj.status?.conditions, "Ready")).toMatchObject({
      status: "True",
      reason: "KeyEnabled",
      observedGeneration: 1,
    });
    const described = await h.kms.send(new DescribeKeyCommand({ KeyId: obj.status!.keyId! }));
    expect(described.KeyMetadata?.Description).toBe("orders data");
    const tags = await h.kms.send(new ListResourceTagsCommand({ KeyId: obj.status!.keyId! }));
    expect(tags.Tags).toEqual(
      expect.arrayContaining([
        { TagKey: "team", TagValue: "a" },
        { TagKey: UID_TAG, TagValue: obj.metadata.uid },
      ]),
    );
    expect(result.requeueAfter).toBe(h.ctx.driftCheckMs);
    expect(h.events("orders").map((e) => e.reason)).toEqual(["Created"]);
  });

  it("is idempotent: a second reconcile changes nothing and writes nothing", async () => {
    const key = h.create(kmsKey("idem"));
    await h.keys.reconcile(key);
    const before = h.key("idem");
    const writes = h.api.totalRequests("patch");
    await h.keys.reconcile(key);
    expect(h.key("idem").metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(h.api.totalRequests("patch")).toBe(writes);
    expect(await countKeys()).toBe(1);
  });

  it("adopts the key it created when the status write was lost (restart between CreateKey and status)", async () => {
    const key = h.create(kmsKey("crashy"));
    const stop = h.api.inject((r) =>
      r.subresource === "status"
        ? new (class extends Error {
            status = 500;
            reason = "InternalError";
          })("boom")
        : undefined,
    );
    await expect(h.keys.reconcile(key)).rejects.toThrow();
    stop();
    expect(h.key("crashy").status?.keyId).toBeUndefined();
    expect(await countKeys()).toBe(1);
    // A fresh controller (a restart): nothing in memory, only the key's UID tag to go by.
    const { KmsKeyReconciler } = await import("../src/controller/kmskey/reconciler.js");
    await new KmsKeyReconciler(h.ctx).reconcile(key);
    expect(await countKeys()).toBe(1);
    expect(h.key("crashy").status?.keyId).toBeDefined();
  });

  it("applies spec changes: description, disable, tags", async () => {
    const key = h.create(kmsKey("change", withTags({ a: "1", b: "2" })));
    await h.keys.reconcile(key);
    const obj = h.key("change");
    h.api.patch("kmskeys", NS, "change", "merge", {
      spec: { description: "new", enabled: false, tags: { a: "9", b: null } },
    });
    await h.keys.reconcile(key);
    const after = h.key("change");
    expect(after.metadata.generation).toBe(2);
    expect(after.status?.observedGeneration).toBe(2);
    expect(after.status?.keyState).toBe("Disabled");
    expect(findCondition(after.status?.conditions, "Ready")).toMatchObject({
      status: "True",
      reason: "KeyDisabled",
    });
    const m = await h.kms.send(new DescribeKeyCommand({ KeyId: obj.status!.keyId! }));
    expect(m.KeyMetadata).toMatchObject({ Description: "new", KeyState: "Disabled" });
    const tags = await h.kms.send(new ListResourceTagsCommand({ KeyId: obj.status!.keyId! }));
    expect(Object.fromEntries(tags.Tags!.map((t) => [t.TagKey, t.TagValue]))).toEqual({
      a: "9",
      [UID_TAG]: obj.metadata.uid,
    });
    expect(h.events("change").map((e) => e.reason)).toEqual(["Created", "Updated"]);
  });

  it("corrects drift made through the KMS API and records a Warning event", async () => {
    const key = h.create(kmsKey("drift"));
    await h.keys.reconcile(key);
    const keyId = h.key("drift").status!.keyId!;
    await h.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    await h.keys.reconcile(key);
    const m = await h.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(m.KeyMetadata?.KeyState).toBe("Enabled");
    expect(h.events("drift").at(-1)).toMatchObject({ type: "Warning", reason: "DriftCorrected" });
  });

  it("turns rotation on with a period, mirrors the next rotation date and requeues at it", async () => {
    const key = h.create(kmsKey("rot", withRotation(90)));
    const result = await h.keys.reconcile(key);
    const obj = h.key("rot");
    expect(obj.status).toMatchObject({
      rotationEnabled: true,
      rotationPeriodDays: 90,
      currentVersion: 1,
    });
    const next = new Date(obj.status!.nextRotationTime!).getTime();
    expect(next - h.clock.now().getTime()).toBe(90 * DAY);
    // The drift check (10 min) comes before the rotation date.
    expect(result.requeueAfter).toBe(h.ctx.driftCheckMs);
    expect(findCondition(obj.status?.conditions, "RotationEnabled")?.status).toBe("True");
  });

  it("after the rotation date the key service has rotated and status shows the new version", async () => {
    const key = h.create(kmsKey("rot2", withRotation(90)));
    await h.keys.reconcile(key);
    await h.advance(90 * DAY + 1000);
    await h.keys.reconcile(key);
    const obj = h.key("rot2");
    expect(obj.status?.currentVersion).toBe(2);
    expect(obj.status?.lastRotationTime).toBeDefined();
    expect(new Date(obj.status!.nextRotationTime!).getTime()).toBeGreaterThan(
      h.clock.now().getTime(),
    );
  });

  it("a key pending deletion is looked at again at its deletion date, not polled", async () => {
    const key = h.create(kmsKey("soon", withDeletion({ requested: true, pendingWindowDays: 7 })));
    const first = await h.keys.reconcile(key);
    expect(first.requeueAfter).toBe(7 * DAY + 1000);
    const obj = h.key("soon");
    expect(obj.status?.keyState).toBe("PendingDeletion");
    expect(new Date(obj.status!.deletionDate!).getTime() - h.clock.now().getTime()).toBe(7 * DAY);
    await h.advance(7 * DAY - 60_000);
    const result = await h.keys.reconcile(key);
    expect(result.requeueAfter).toBe(60_000 + 1000);
  });

  it("declarative deletion: requested schedules it, false again before the date cancels it", async () => {
    const key = h.create(kmsKey("decl"));
    await h.keys.reconcile(key);
    h.api.patch("kmskeys", NS, "decl", "merge", {
      spec: { deletion: { requested: true, pendingWindowDays: 10 } },
    });
    await h.keys.reconcile(key);
    let obj = h.key("decl");
    expect(obj.status?.keyState).toBe("PendingDeletion");
    expect(findCondition(obj.status?.conditions, "PendingDeletion")).toMatchObject({
      status: "True",
      reason: "DeletionRequested",
    });
    expect(findCondition(obj.status?.conditions, "Ready")?.status).toBe("False");
    await h.advance(3 * DAY);
    h.api.patch("kmskeys", NS, "decl", "merge", { spec: { deletion: { requested: false } } });
    await h.keys.reconcile(key);
    obj = h.key("decl");
    expect(obj.status?.keyState).toBe("Enabled");
    expect(obj.status?.deletionDate).toBeUndefined();
    expect(findCondition(obj.status?.conditions, "Ready")?.status).toBe("True");
  });

  it("kubectl delete (policy Delete) schedules deletion, keeps the object showing PendingDeletion, then lets it go", async () => {
    const key = h.create(kmsKey("gone", withDeletion({ pendingWindowDays: 7 })));
    await h.keys.reconcile(key);
    const keyId = h.key("gone").status!.keyId!;
    h.api.delete("kmskeys", NS, "gone");
    const result = await h.keys.reconcile(key);
    const obj = h.key("gone");
    expect(obj.metadata.deletionTimestamp).toBeDefined();
    expect(obj.status?.keyState).toBe("PendingDeletion");
    expect(obj.status?.deletionDate).toBe("2026-03-08T00:00:00Z");
    expect(result.requeueAfter).toBe(7 * DAY + 1000);
    expect(h.events("gone").map((e) => e.reason)).toContain("DeletionScheduled");
    await h.advance(7 * DAY + 1000);
    await h.keys.reconcile(key);
    expect(() => h.key("gone")).toThrow(/not found/);
    await expect(h.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({
      name: "NotFoundException",
    });
  });

  it("policy Retain lets the object go and leaves the key untouched", async () => {
    const key = h.create(kmsKey("keep", withDeletion({ policy: "Retain" })));
    await h.keys.reconcile(key);
    const keyId = h.key("keep").status!.keyId!;
    h.api.delete("kmskeys", NS, "keep");
    await h.keys.reconcile(key);
    expect(() => h.key("keep")).toThrow(/not found/);
    const m = await h.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(m.KeyMetadata?.KeyState).toBe("Enabled");
  });

  it("switching a terminating object to Retain cancels the scheduled deletion (the rescue path)", async () => {
    const key = h.create(kmsKey("rescue"));
    await h.keys.reconcile(key);
    const keyId = h.key("rescue").status!.keyId!;
    h.api.delete("kmskeys", NS, "rescue");
    await h.keys.reconcile(key);
    h.api.patch("kmskeys", NS, "rescue", "merge", { spec: { deletion: { policy: "Retain" } } });
    await h.keys.reconcile(key);
    expect(() => h.key("rescue")).toThrow(/not found/);
    const m = await h.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(m.KeyMetadata?.KeyState).toBe("Enabled");
  });

  it("a spec the key service refuses is a condition with the AWS error, not a retry loop", async () => {
    const key = h.create({ ...kmsKey("bad"), spec: { policy: "{not json" } });
    await expect(h.keys.reconcile(key)).rejects.toMatchObject({
      name: "TerminalError",
      reason: "MalformedPolicyDocumentException",
    });
    const ready = findCondition(h.key("bad").status?.conditions, "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "MalformedPolicyDocumentException" });
  });
});

describe("CRD schema in the in-memory API server", () => {
  it("applies defaults and rejects out-of-range values and changes to immutable fields", async () => {
    h.create(kmsKey("schema"));
    const obj = h.key("schema");
    expect(obj.spec).toMatchObject({
      keySpec: "SYMMETRIC_DEFAULT",
      origin: "AWS_KMS",
      enabled: true,
      rotation: { enabled: false, periodDays: 365 },
      deletion: { pendingWindowDays: 30, policy: "Delete", requested: false },
    });
    expect(() =>
      h.create({ ...kmsKey("r"), spec: { rotation: { enabled: true, periodDays: 30 } } }),
    ).toThrow(/greater than or equal to 90/);
    expect(() =>
      h.create({ ...kmsKey("w"), spec: { deletion: { pendingWindowDays: 31 } } }),
    ).toThrow(/less than or equal to 30/);
    expect(() => h.create({ ...kmsKey("s"), spec: { keySpec: "AES_999" } })).toThrow(
      /Unsupported value/,
    );
    expect(() =>
      h.api.patch("kmskeys", NS, "schema", "merge", { spec: { keySpec: "HMAC_256" } }),
    ).toThrow(/keySpec is immutable/);
    expect(() =>
      h.api.patch("kmskeys", NS, "schema", "merge", { spec: { origin: "EXTERNAL" } }),
    ).toThrow(/origin is immutable/);
  });
});
