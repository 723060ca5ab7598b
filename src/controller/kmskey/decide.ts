/**
 * KmsKey decisions as pure functions of (spec, what the key service reports, now):
 * which KMS calls bring the key to the spec and when to look again (status.ts
 * describes the key). The reconciler only performs what these return.
 */
import { canonicalJson } from "../canonicalJson.js";
import type { ResolvedKeySpec } from "../../api/v1alpha1/defaults.js";
import { UID_TAG } from "../../api/v1alpha1/types.js";

/** The key as the key service reports it. */
export interface ObservedKey {
  readonly keyId: string;
  readonly arn: string;
  readonly state: string;
  readonly description: string;
  readonly keySpec: string;
  readonly keyUsage: string;
  readonly origin: string;
  /** The custom key store of an AWS_CLOUDHSM key. */
  readonly customKeyStoreId?: string;
  /** PRIMARY or REPLICA for a multi-Region key (its primary may move: UpdatePrimaryRegion). */
  readonly multiRegionKeyType?: string;
  readonly primaryRegion?: string;
  /** The external key of an EXTERNAL_KEY_STORE key. */
  readonly xksKeyId?: string;
  readonly deletionDate?: Date;
  /** Absent when rotation does not apply to this key (not symmetric AWS_KMS). */
  readonly rotation?: { enabled: boolean; periodDays?: number; nextRotationDate?: Date };
  readonly tags: Readonly<Record<string, string>>;
  /** Only read when the spec sets a policy. */
  readonly policy?: string;
  /**
   * Rotation dates, oldest first: read when rotation applies and the key is not
   * pending deletion (empty if the key service does not list rotations).
   */
  readonly rotations?: readonly Date[];
  /** Just created by this reconcile (nothing rotated yet, nothing read back). */
  readonly fresh?: boolean;
}

export type KeyAction =
  | { op: "ScheduleKeyDeletion"; pendingWindowDays: number }
  | { op: "CancelKeyDeletion" }
  | { op: "EnableKey" }
  | { op: "DisableKey" }
  | { op: "UpdateKeyDescription"; description: string }
  | { op: "EnableKeyRotation"; periodDays: number }
  | { op: "DisableKeyRotation" }
  | { op: "RotateKeyOnDemand"; request: string }
  | { op: "TagResource"; tags: Record<string, string> }
  | { op: "UntagResource"; keys: string[] }
  | { op: "PutKeyPolicy"; policy: string };

export interface KeyPlan {
  readonly actions: KeyAction[];
  /** Spec fields the key cannot be changed to (immutable after creation). */
  readonly immutableMismatch: string[];
  /** Why rotation cannot be applied now, if it cannot. */
  readonly rotationBlocked?: string;
}

export const rotationApplies = (keySpec: string, origin: string) =>
  keySpec === "SYMMETRIC_DEFAULT" && origin === "AWS_KMS";

/** Compares policy documents by meaning, not by whitespace. */
export function samePolicy(a: string, b: string): boolean {
  try {
    return canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b));
  } catch {
    return a === b;
  }
}

export function desiredTags(spec: ResolvedKeySpec, uid: string): Record<string, string> {
  return { ...spec.tags, [UID_TAG]: uid };
}

/**
 * The calls that bring `key` to `spec`, in an order the key service accepts:
 * deletion first (nothing else applies to a key pending deletion), then state,
 * then the settings (rotation needs an Enabled key).
 */
export function planKey(
  spec: ResolvedKeySpec,
  key: ObservedKey,
  uid: string,
  lastOnDemandRequest: string | undefined,
): KeyPlan {
  const actions: KeyAction[] = [];
  const immutableMismatch: string[] = [];
  if (spec.keySpec !== key.keySpec)
    immutableMismatch.push(`keySpec (${key.keySpec} → ${spec.keySpec})`);
  if (spec.keyUsage !== key.keyUsage)
    immutableMismatch.push(`keyUsage (${key.keyUsage} → ${spec.keyUsage})`);
  if (spec.origin !== key.origin) immutableMismatch.push(`origin (${key.origin} → ${spec.origin})`);
  if (spec.customKeyStoreId !== key.customKeyStoreId)
    immutableMismatch.push(
      `customKeyStoreId (${key.customKeyStoreId ?? "none"} → ${spec.customKeyStoreId ?? "none"})`,
    );
  if (spec.xksKeyId !== key.xksKeyId)
    immutableMismatch.push(`xksKeyId (${key.xksKeyId ?? "none"} → ${spec.xksKeyId ?? "none"})`);

  const multiRegion = spec.multiRegion || spec.replicaOf !== undefined;
  if (multiRegion !== (key.multiRegionKeyType !== undefined))
    immutableMismatch.push(
      `multi-Region (${key.multiRegionKeyType === undefined ? "single-Region key" : "multi-Region key"} → ${multiRegion ? "multiRegion or replicaOf" : "single-Region"})`,
    );
  if (spec.replicaOf !== undefined && key.keyId !== spec.replicaOf.keyId)
    immutableMismatch.push(`replicaOf.keyId (${key.keyId} → ${spec.replicaOf.keyId})`);

  if (spec.deletion.requested) {
    if (key.state !== "PendingDeletion")
      actions.push({
        op: "ScheduleKeyDeletion",
        pendingWindowDays: spec.deletion.pendingWindowDays,
      });
    return { actions, immutableMismatch };
  }
  let state = key.state;
  if (state === "PendingDeletion") {
    actions.push({ op: "CancelKeyDeletion" });
    state = "Disabled";
  }
  if (spec.enabled && state === "Disabled") {
    actions.push({ op: "EnableKey" });
    state = "Enabled";
  } else if (!spec.enabled && state === "Enabled") {
    actions.push({ op: "DisableKey" });
    state = "Disabled";
  }
  if (spec.description !== key.description)
    actions.push({ op: "UpdateKeyDescription", description: spec.description });

  let rotationBlocked: string | undefined;
  const wantsRotation = spec.rotation.enabled || spec.rotation.rotateOnDemandRequest !== undefined;
  if (key.multiRegionKeyType === "REPLICA") {
    // Shared properties follow the primary: rotation is set (and happens) there.
    if (wantsRotation)
      rotationBlocked = `rotation of a multi-Region replica follows its primary (Region ${key.primaryRegion ?? "unknown"}); set it on the primary's KmsKey`;
  } else if (!key.rotation) {
    if (wantsRotation && spec.rotation.enabled)
      rotationBlocked = `automatic rotation applies only to SYMMETRIC_DEFAULT keys with origin AWS_KMS (this key is ${key.keySpec}, ${key.origin})`;
  } else {
    const r = key.rotation;
    const rotationChange =
      spec.rotation.enabled !== r.enabled ||
      (spec.rotation.enabled &&
        r.periodDays !== undefined &&
        r.periodDays !== spec.rotation.periodDays);
    const onDemand =
      spec.rotation.rotateOnDemandRequest !== undefined &&
      spec.rotation.rotateOnDemandRequest !== lastOnDemandRequest;
    if ((rotationChange || onDemand) && state !== "Enabled") {
      rotationBlocked = `the key is ${state}; rotation settings apply once it is Enabled`;
    } else {
      if (rotationChange)
        actions.push(
          spec.rotation.enabled
            ? { op: "EnableKeyRotation", periodDays: spec.rotation.periodDays }
            : { op: "DisableKeyRotation" },
        );
      if (onDemand)
        actions.push({ op: "RotateKeyOnDemand", request: spec.rotation.rotateOnDemandRequest! });
    }
  }

  const want = desiredTags(spec, uid);
  const toTag: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) if (key.tags[k] !== v) toTag[k] = v;
  const toUntag = Object.keys(key.tags).filter((k) => !(k in want));
  if (Object.keys(toTag).length > 0) actions.push({ op: "TagResource", tags: toTag });
  if (toUntag.length > 0) actions.push({ op: "UntagResource", keys: toUntag });

  if (spec.policy !== undefined && key.policy !== undefined && !samePolicy(spec.policy, key.policy))
    actions.push({ op: "PutKeyPolicy", policy: spec.policy });

  return { actions, immutableMismatch, ...(rotationBlocked !== undefined && { rotationBlocked }) };
}

/** Actions that follow from the spec changing by hand-made drift rather than from a spec edit. */
export const isCorrection = (a: KeyAction) =>
  a.op !== "RotateKeyOnDemand" && a.op !== "ScheduleKeyDeletion";

/**
 * When to look at the key again: a key pending deletion only at its deletion date
 * (no polling through the window); otherwise the next rotation date or the drift
 * check, whichever is first. A little after a date: the key service acts at the
 * date, then we mirror it.
 */
export function requeueAfter(
  key: ObservedKey | undefined,
  now: Date,
  driftCheckMs: number,
): number {
  const after = (d: Date) => Math.max(d.getTime() - now.getTime() + 1000, 5000);
  if (key?.deletionDate) return after(key.deletionDate);
  const next = key?.rotation?.enabled ? key.rotation.nextRotationDate : undefined;
  return next ? Math.min(driftCheckMs, after(next)) : driftCheckMs;
}
