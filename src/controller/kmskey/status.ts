/**
 * KmsKey status as pure functions of what one reconcile observed: the object, the
 * key as the gather step read it (rotations included), the plan, and now. The
 * reconciler writes what these return and reads nothing more to build it.
 */
import { rfc3339, setConditions, type ConditionInput } from "../../api/v1alpha1/conditions.js";
import type { ResolvedKeySpec } from "../../api/v1alpha1/defaults.js";
import type { KmsKey, KmsKeyStatus } from "../../api/v1alpha1/types.js";
import type { KeyPlan, ObservedKey } from "./decide.js";

/** Ready and the specific conditions for a key that exists. */
export function keyConditions(
  spec: ResolvedKeySpec,
  key: ObservedKey,
  plan: KeyPlan,
): ConditionInput[] {
  const conditions: ConditionInput[] = [];
  const pending = key.state === "PendingDeletion";
  conditions.push(
    pending
      ? {
          type: "PendingDeletion",
          status: "True",
          reason: spec.deletion.requested ? "DeletionRequested" : "ObjectDeleted",
          message: `The key will be deleted on ${key.deletionDate?.toISOString() ?? "its deletion date"}${spec.deletion.requested ? "; set spec.deletion.requested to false before then to cancel" : ""}.`,
        }
      : {
          type: "PendingDeletion",
          status: "False",
          reason: "NotScheduled",
          message: "No deletion is scheduled.",
        },
  );
  if (key.rotation)
    conditions.push({
      type: "RotationEnabled",
      status: key.rotation.enabled ? "True" : "False",
      reason: key.rotation.enabled ? "Scheduled" : "Disabled",
      message: key.rotation.enabled
        ? `Automatic rotation every ${key.rotation.periodDays ?? spec.rotation.periodDays} days${key.rotation.nextRotationDate ? `; next on ${key.rotation.nextRotationDate.toISOString()}` : ""}.`
        : "Automatic rotation is off.",
    });
  const problems = [
    ...(plan.immutableMismatch.length > 0
      ? [
          `immutable fields differ from the key: ${plan.immutableMismatch.join(", ")}; recreate the object to change them`,
        ]
      : []),
    ...(plan.rotationBlocked ? [plan.rotationBlocked] : []),
  ];
  conditions.push(
    problems.length > 0
      ? {
          type: "Synced",
          status: "False",
          reason:
            plan.immutableMismatch.length > 0 ? "ImmutableFieldChanged" : "RotationNotApplied",
          message: problems.join("; "),
        }
      : { type: "Synced", status: "True", reason: "Synced", message: "The key matches the spec." },
  );
  let ready: ConditionInput;
  if (pending)
    ready = {
      type: "Ready",
      status: "False",
      reason: "PendingDeletion",
      message: `The key is pending deletion (on ${key.deletionDate?.toISOString() ?? "its date"}).`,
    };
  else if (problems.length > 0)
    ready = {
      type: "Ready",
      status: "False",
      reason: plan.immutableMismatch.length > 0 ? "ImmutableFieldChanged" : "RotationNotApplied",
      message: problems.join("; "),
    };
  else if (key.state === "Enabled" || (key.state === "Disabled" && !spec.enabled))
    ready = {
      type: "Ready",
      status: "True",
      reason: key.state === "Enabled" ? "KeyEnabled" : "KeyDisabled",
      message: `The key is ${key.state}, as the spec asks.`,
    };
  else
    ready = {
      type: "Ready",
      status: "False",
      reason: `Key${key.state}`,
      message: `The key is ${key.state}.`,
    };
  conditions.push(ready);
  return conditions;
}

/** What a reconcile that found (and possibly changed) the key observed last. */
export interface KeyStatusInput {
  readonly obj: KmsKey;
  readonly spec: ResolvedKeySpec;
  readonly key: ObservedKey;
  readonly plan: KeyPlan;
  /** The on-demand rotation request honoured last (this reconcile's, if it rotated). */
  readonly lastOnDemandRequest: string | undefined;
  readonly now: Date;
}

/**
 * The key mirrored into status. The version is 1 for a key just created, else one
 * more than its rotations; a key whose rotations were not read (rotation does not
 * apply, or it is pending deletion) shows none.
 */
export function keyStatus({
  obj,
  spec,
  key,
  plan,
  lastOnDemandRequest,
  now,
}: KeyStatusInput): KmsKeyStatus {
  const currentVersion = key.fresh ? 1 : key.rotations ? key.rotations.length + 1 : undefined;
  const last = key.fresh ? undefined : key.rotations?.at(-1);
  return {
    keyId: key.keyId,
    arn: key.arn,
    keyState: key.state,
    keySpec: key.keySpec,
    keyUsage: key.keyUsage,
    ...(key.multiRegionKeyType !== undefined && { multiRegionKeyType: key.multiRegionKeyType }),
    ...(key.primaryRegion !== undefined && { primaryRegion: key.primaryRegion }),
    ...(currentVersion !== undefined && { currentVersion }),
    ...(key.rotation && { rotationEnabled: key.rotation.enabled }),
    ...(key.rotation?.enabled &&
      key.rotation.periodDays !== undefined && { rotationPeriodDays: key.rotation.periodDays }),
    ...(last && { lastRotationTime: rfc3339(last) }),
    ...(key.rotation?.enabled &&
      key.rotation.nextRotationDate && {
        nextRotationTime: rfc3339(key.rotation.nextRotationDate),
      }),
    ...(key.deletionDate && { deletionDate: rfc3339(key.deletionDate) }),
    ...(lastOnDemandRequest !== undefined && { lastOnDemandRequest }),
    observedGeneration: obj.metadata.generation,
    conditions: setConditions(
      obj.status?.conditions,
      keyConditions(spec, key, plan),
      obj.metadata.generation,
      now,
    ),
  };
}

/**
 * status.keyId names a key that no longer exists: deleted at the end of its pending
 * window (as requested), or outside this object. The ids stay, to say which key it was.
 */
export function keyGoneStatus(obj: KmsKey, spec: ResolvedKeySpec, now: Date): KmsKeyStatus {
  const status: KmsKeyStatus = {
    ...obj.status,
    keyState: "Deleted",
    observedGeneration: obj.metadata.generation,
    conditions: setConditions(
      obj.status?.conditions,
      [
        {
          type: "PendingDeletion",
          status: "False",
          reason: "KeyDeleted",
          message: "The key has been deleted.",
        },
        {
          type: "Ready",
          status: "False",
          reason: "KeyDeleted",
          message: spec.deletion.requested
            ? "The key was deleted as requested; delete this object."
            : `Key ${obj.status?.keyId} no longer exists in the key service; it was deleted outside this object. Delete and recreate the object to get a new key.`,
        },
      ],
      obj.metadata.generation,
      now,
    ),
  };
  // A key that is gone has no dates ahead.
  delete status.deletionDate;
  delete status.nextRotationTime;
  return status;
}

/**
 * A reconcile that failed: Synced=False with the failure, and Ready=False too while
 * there is no key yet (a key that exists stays as Ready as it was). observedGeneration
 * is left alone: the spec was not applied, so the next success is an update, not drift.
 */
export function keyFailedStatus(
  obj: KmsKey,
  failure: { readonly reason: string; readonly message: string },
  now: Date,
): KmsKeyStatus {
  const { reason, message } = failure;
  return {
    ...obj.status,
    conditions: setConditions(
      obj.status?.conditions,
      [
        { type: "Synced", status: "False", reason, message },
        ...(obj.status?.keyId
          ? []
          : [{ type: "Ready", status: "False" as const, reason, message }]),
      ],
      obj.metadata.generation,
      now,
    ),
  };
}
