import { describe, expect, it } from "vitest";
import { findCondition } from "../../api/v1alpha1/conditions.js";
import { resolveKeySpec } from "../../api/v1alpha1/defaults.js";
import type { KmsKey, KmsKeySpec, KmsKeyStatus } from "../../api/v1alpha1/types.js";
import type { KeyPlan, ObservedKey } from "./decide.js";
import { keyFailedStatus, keyGoneStatus, keyStatus } from "./status.js";

const DAY = 86_400_000;
const now = new Date("2026-05-01T00:00:00Z");
const earlier = "2026-04-01T00:00:00Z";
const synced: KeyPlan = { actions: [], immutableMismatch: [] };

function kmsKey(spec: KmsKeySpec = {}, status?: KmsKeyStatus, generation = 2): KmsKey {
  return {
    apiVersion: "keyhaven.dev/v1alpha1",
    kind: "KmsKey",
    metadata: { name: "k", namespace: "ns", uid: "u1", resourceVersion: "1", generation },
    spec,
    ...(status && { status }),
  };
}

/** An enabled symmetric key with rotation off and no rotations, with `extra` on top and `unread` left out. */
function observed(
  extra: Partial<ObservedKey> = {},
  unread: readonly ("rotation" | "rotations")[] = [],
): ObservedKey {
  const key: { -readonly [F in keyof ObservedKey]: ObservedKey[F] } = {
    keyId: "k",
    arn: "arn:aws:kms:us-east-1:000000000000:key/k",
    state: "Enabled",
    description: "",
    keySpec: "SYMMETRIC_DEFAULT",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "AWS_KMS",
    tags: {},
    rotation: { enabled: false },
    rotations: [],
    ...extra,
  };
  for (const field of unread) delete key[field];
  return key;
}

const conditionsOf = (s: KmsKeyStatus) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe("keyStatus", () => {
  const cases: {
    name: string;
    spec?: KmsKeySpec;
    key: ObservedKey;
    plan?: KeyPlan;
    lastOnDemandRequest?: string;
    want: Partial<KmsKeyStatus>;
    conditions: Record<string, string>;
  }[] = [
    {
      name: "a key just created is version 1, Ready",
      key: observed({ fresh: true }, ["rotations"]),
      want: { keyState: "Enabled", currentVersion: 1, rotationEnabled: false },
      conditions: {
        Ready: "True/KeyEnabled",
        Synced: "True/Synced",
        PendingDeletion: "False/NotScheduled",
        RotationEnabled: "False/Disabled",
      },
    },
    {
      name: "the version counts the rotations; the last one is lastRotationTime",
      spec: { rotation: { enabled: true, periodDays: 90 } },
      key: observed({
        rotation: {
          enabled: true,
          periodDays: 90,
          nextRotationDate: new Date(now.getTime() + DAY),
        },
        rotations: [new Date("2026-01-01T00:00:00.250Z"), new Date("2026-04-01T00:00:00Z")],
      }),
      want: {
        currentVersion: 3,
        lastRotationTime: "2026-04-01T00:00:00Z",
        rotationEnabled: true,
        rotationPeriodDays: 90,
        nextRotationTime: "2026-05-02T00:00:00Z",
      },
      conditions: { Ready: "True/KeyEnabled", RotationEnabled: "True/Scheduled" },
    },
    {
      name: "rotation that does not apply (asymmetric): no version, no rotation fields",
      spec: { keySpec: "RSA_2048" },
      key: observed(
        {
          keySpec: "RSA_2048",
          keyUsage: "ENCRYPT_DECRYPT",
        },
        ["rotation", "rotations"],
      ),
      want: { keySpec: "RSA_2048" },
      conditions: { Ready: "True/KeyEnabled" },
    },
    {
      name: "pending deletion: the date, Ready False, no rotation read",
      spec: { deletion: { requested: true } },
      key: observed(
        {
          state: "PendingDeletion",
          deletionDate: new Date(now.getTime() + 7 * DAY),
        },
        ["rotation", "rotations"],
      ),
      want: { keyState: "PendingDeletion", deletionDate: "2026-05-08T00:00:00Z" },
      conditions: { Ready: "False/PendingDeletion", PendingDeletion: "True/DeletionRequested" },
    },
    {
      name: "disabled as the spec asks is Ready",
      spec: { enabled: false },
      key: observed({ state: "Disabled" }, ["rotation", "rotations"]),
      want: { keyState: "Disabled" },
      conditions: { Ready: "True/KeyDisabled", Synced: "True/Synced" },
    },
    {
      name: "an immutable field that differs is Synced and Ready False",
      spec: { keySpec: "HMAC_256" },
      key: observed(),
      plan: { actions: [], immutableMismatch: ["keySpec (SYMMETRIC_DEFAULT → HMAC_256)"] },
      want: { currentVersion: 1 },
      conditions: { Ready: "False/ImmutableFieldChanged", Synced: "False/ImmutableFieldChanged" },
    },
    {
      name: "rotation blocked on a disabled key is RotationNotApplied",
      spec: { enabled: false, rotation: { enabled: true } },
      key: observed({ state: "Disabled" }),
      plan: { actions: [], immutableMismatch: [], rotationBlocked: "the key is Disabled" },
      want: { currentVersion: 1 },
      conditions: { Ready: "False/RotationNotApplied", Synced: "False/RotationNotApplied" },
    },
    {
      name: "the honoured on-demand request is kept",
      key: observed(),
      lastOnDemandRequest: "r1",
      want: { currentVersion: 1, lastOnDemandRequest: "r1" },
      conditions: { Ready: "True/KeyEnabled" },
    },
  ];

  for (const c of cases)
    it(c.name, () => {
      const obj = kmsKey(c.spec);
      const status = keyStatus({
        obj,
        spec: resolveKeySpec(c.spec),
        key: c.key,
        plan: c.plan ?? synced,
        lastOnDemandRequest: c.lastOnDemandRequest,
        now,
      });
      expect(status).toMatchObject({
        keyId: "k",
        arn: c.key.arn,
        observedGeneration: 2,
        ...c.want,
      });
      expect(conditionsOf(status)).toMatchObject(c.conditions);
      for (const field of [
        "currentVersion",
        "lastRotationTime",
        "nextRotationTime",
        "deletionDate",
        "rotationPeriodDays",
        "lastOnDemandRequest",
      ] as const)
        if (!(field in c.want)) expect(status[field], field).toBeUndefined();
    });

  it("keeps a condition's transition time while its status holds, moves it when it flips", () => {
    const before = keyStatus({
      obj: kmsKey(),
      spec: resolveKeySpec({}),
      key: observed(),
      plan: synced,
      lastOnDemandRequest: undefined,
      now: new Date(earlier),
    });
    const after = keyStatus({
      obj: kmsKey({}, before),
      spec: resolveKeySpec({}),
      key: observed({ state: "Disabled" }),
      plan: synced,
      lastOnDemandRequest: undefined,
      now,
    });
    expect(findCondition(after.conditions, "Synced")?.lastTransitionTime).toBe(earlier);
    expect(findCondition(after.conditions, "Ready")).toMatchObject({
      status: "False",
      reason: "KeyDisabled",
      lastTransitionTime: "2026-05-01T00:00:00Z",
    });
  });
});

describe("keyGoneStatus", () => {
  const before: KmsKeyStatus = {
    keyId: "k",
    arn: "arn:aws:kms:us-east-1:000000000000:key/k",
    keyState: "PendingDeletion",
    deletionDate: earlier,
    nextRotationTime: earlier,
    currentVersion: 2,
  };

  it.each([
    [true, "The key was deleted as requested; delete this object."],
    [false, "Key k no longer exists in the key service"],
  ])("requested=%s: Deleted, ids kept, no dates ahead", (requested, message) => {
    const spec = { deletion: { requested } };
    const status = keyGoneStatus(kmsKey(spec, before), resolveKeySpec(spec), now);
    expect(status).toMatchObject({
      keyId: "k",
      arn: before.arn,
      currentVersion: 2,
      keyState: "Deleted",
      observedGeneration: 2,
    });
    expect(status.deletionDate).toBeUndefined();
    expect(status.nextRotationTime).toBeUndefined();
    expect(conditionsOf(status)).toEqual({
      PendingDeletion: "False/KeyDeleted",
      Ready: "False/KeyDeleted",
    });
    expect(findCondition(status.conditions, "Ready")?.message).toContain(message);
  });
});

describe("keyFailedStatus", () => {
  const failure = { reason: "MalformedPolicyDocumentException", message: "bad policy" };

  it("without a key yet: Synced and Ready False with the failure", () => {
    const status = keyFailedStatus(kmsKey(), failure, now);
    expect(conditionsOf(status)).toEqual({
      Synced: "False/MalformedPolicyDocumentException",
      Ready: "False/MalformedPolicyDocumentException",
    });
    expect(findCondition(status.conditions, "Ready")?.message).toBe("bad policy");
  });

  it("with a key: Synced False, Ready as it was, observedGeneration untouched", () => {
    const ready = keyStatus({
      obj: kmsKey({}, undefined, 1),
      spec: resolveKeySpec({}),
      key: observed(),
      plan: synced,
      lastOnDemandRequest: undefined,
      now: new Date(earlier),
    });
    const status = keyFailedStatus(kmsKey({}, ready, 2), failure, now);
    expect(status.observedGeneration).toBe(1);
    expect(status.keyId).toBe("k");
    expect(conditionsOf(status)).toMatchObject({
      Synced: "False/MalformedPolicyDocumentException",
      Ready: "True/KeyEnabled",
    });
  });
});
