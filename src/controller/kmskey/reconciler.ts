/**
 * KmsKey → a key in the key service. Level-triggered: every run reads the object
 * and the key as they are now, plans with decide.ts, acts, mirrors the result into
 * status, and asks to be woken at the next rotation or deletion date. Safe to run
 * twice and after a crash at any point (the UID tag ties the key to the object).
 */
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateKeyDescriptionCommand,
  type KeyMetadata,
} from "@aws-sdk/client-kms";
import { rfc3339, setConditions, type ConditionInput } from "../../api/v1alpha1/conditions.js";
import { resolveKeySpec, type ResolvedKeySpec } from "../../api/v1alpha1/defaults.js";
import {
  ADOPT_ANNOTATION,
  FINALIZER,
  UID_TAG,
  type KmsKey,
  type KmsKeyStatus,
} from "../../api/v1alpha1/types.js";
import {
  addFinalizer,
  readObject,
  reconcileObject,
  recordEvent,
  removeFinalizer,
  writeStatus,
  type ReconcileContext,
} from "../context.js";
import { errorMessage, isKmsError, kmsErrorName } from "../kms.js";
import { TerminalError, type Result } from "../runtime/controller.js";
import { KeyAdoptionIndex } from "./adoption.js";
import {
  desiredTags,
  isCorrection,
  keyConditions,
  planKey,
  requeueAfter,
  rotationApplies,
  type KeyAction,
  type ObservedKey,
} from "./decide.js";

export class KmsKeyReconciler {
  readonly adoption: KeyAdoptionIndex;
  constructor(readonly ctx: ReconcileContext) {
    this.adoption = new KeyAdoptionIndex(ctx.kms);
  }

  readonly reconcile = (key: string): Promise<Result> =>
    reconcileObject(this.ctx, "KmsKey", key, {
      sync: (obj) => this.#sync(obj),
      finalize: (obj) => this.#finalize(obj),
      failed: (key, reason, message) => this.#writeFailure(key, reason, message),
    });

  async #sync(initial: KmsKey): Promise<Result> {
    const ctx = this.ctx;
    const spec = resolveKeySpec(initial.spec);
    const obj = await addFinalizer(ctx, "KmsKey", initial);
    let observed = await this.#findKey(obj);
    let created = false;
    if (!observed) {
      if (obj.status?.keyId) return this.#keyGone(obj, spec);
      observed = await this.#create(obj, spec);
      created = true;
    }
    const plan = planKey(spec, observed, obj.metadata.uid, obj.status?.lastOnDemandRequest);
    let lastOnDemandRequest = obj.status?.lastOnDemandRequest;
    if (plan.actions.length > 0) {
      for (const action of plan.actions) {
        await this.#perform(observed.keyId, action);
        if (action.op === "RotateKeyOnDemand") lastOnDemandRequest = action.request;
      }
      const drift =
        !created &&
        obj.status?.observedGeneration === obj.metadata.generation &&
        plan.actions.some(isCorrection);
      if (!created)
        await recordEvent(ctx, obj, {
          type: drift ? "Warning" : "Normal",
          reason: drift ? "DriftCorrected" : "Updated",
          message: `${drift ? "The key had drifted from the spec; " : ""}applied ${plan.actions.map((a) => a.op).join(", ")}.`,
        });
      observed = (await this.#observe(observed.keyId, spec))!;
    }
    const status = await this.#status(
      obj,
      spec,
      observed,
      keyConditions(spec, observed, plan),
      lastOnDemandRequest,
    );
    await writeStatus(ctx, "KmsKey", obj, status);
    return { requeueAfter: requeueAfter(observed, ctx.timers.now(), ctx.driftCheckMs) };
  }

  /** The key this object owns: by status.keyId, else by the adopt annotation, else by the UID tag. */
  async #findKey(obj: KmsKey): Promise<ObservedKey | undefined> {
    const spec = resolveKeySpec(obj.spec);
    if (obj.status?.keyId) return this.#observe(obj.status.keyId, spec);
    const wanted = obj.metadata.annotations?.[ADOPT_ANNOTATION];
    if (wanted) {
      const observed = await this.#observe(wanted, spec);
      if (!observed)
        throw new TerminalError(
          "AdoptionFailed",
          `${ADOPT_ANNOTATION} names key ${wanted}, which does not exist`,
        );
      await recordEvent(this.ctx, obj, {
        type: "Normal",
        reason: "Adopted",
        message: `Adopted existing key ${observed.keyId}.`,
      });
      return observed;
    }
    const keyId = await this.adoption.find(obj.metadata.uid);
    return keyId ? this.#observe(keyId, spec) : undefined;
  }

  async #create(obj: KmsKey, spec: ResolvedKeySpec): Promise<ObservedKey> {
    const tags = desiredTags(spec, obj.metadata.uid);
    let metadata: KeyMetadata | undefined;
    try {
      const out = await this.ctx.kms.send(
        new CreateKeyCommand({
          Description: spec.description,
          KeySpec: spec.keySpec as never,
          KeyUsage: spec.keyUsage as never,
          Origin: spec.origin as never,
          ...(spec.policy !== undefined && { Policy: spec.policy }),
          Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
        }),
      );
      metadata = out.KeyMetadata;
    } catch (err) {
      // The key may exist even though the answer was lost: look again before creating another.
      if (kmsErrorName(err) === undefined) this.adoption.invalidate();
      throw err;
    }
    if (!metadata?.KeyId) throw new Error("CreateKey returned no KeyMetadata");
    this.adoption.remember(obj.metadata.uid, metadata.KeyId);
    await recordEvent(this.ctx, obj, {
      type: "Normal",
      reason: "Created",
      message: `Created key ${metadata.KeyId}.`,
    });
    // A new key is exactly what CreateKey says it is (tags and policy as sent, rotation off,
    // no rotations yet): no need to read it back.
    const keySpec = metadata.KeySpec ?? spec.keySpec;
    const origin = metadata.Origin ?? spec.origin;
    return {
      keyId: metadata.KeyId,
      arn: metadata.Arn!,
      state: metadata.KeyState ?? "Enabled",
      description: metadata.Description ?? "",
      keySpec,
      keyUsage: metadata.KeyUsage ?? spec.keyUsage,
      origin,
      tags,
      fresh: true,
      ...(rotationApplies(keySpec, origin) &&
        metadata.KeyState === "Enabled" && { rotation: { enabled: false } }),
      ...(spec.policy !== undefined && { policy: spec.policy }),
    };
  }

  /** Reads the key's current state; undefined if it does not exist (any more). */
  async #observe(keyId: string, spec: ResolvedKeySpec): Promise<ObservedKey | undefined> {
    const kms = this.ctx.kms;
    let m: KeyMetadata;
    try {
      const out = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      m = out.KeyMetadata!;
    } catch (err) {
      if (isKmsError(err, "NotFoundException")) return undefined;
      throw err;
    }
    const id = m.KeyId!;
    const keySpec = m.KeySpec ?? "SYMMETRIC_DEFAULT";
    const origin = m.Origin ?? "AWS_KMS";
    const tagsOut = await kms.send(new ListResourceTagsCommand({ KeyId: id }));
    const tags = Object.fromEntries((tagsOut.Tags ?? []).map((t) => [t.TagKey!, t.TagValue ?? ""]));
    let rotation: ObservedKey["rotation"];
    if (rotationApplies(keySpec, origin) && m.KeyState !== "PendingDeletion") {
      const r = await kms.send(new GetKeyRotationStatusCommand({ KeyId: id }));
      rotation = {
        enabled: r.KeyRotationEnabled ?? false,
        ...(r.RotationPeriodInDays !== undefined && { periodDays: r.RotationPeriodInDays }),
        ...(r.NextRotationDate && { nextRotationDate: r.NextRotationDate }),
      };
    }
    let policy: string | undefined;
    if (spec.policy !== undefined && m.KeyState !== "PendingDeletion") {
      const p = await kms.send(new GetKeyPolicyCommand({ KeyId: id, PolicyName: "default" }));
      policy = p.Policy;
    }
    return {
      keyId: id,
      arn: m.Arn!,
      state: m.KeyState ?? "Enabled",
      description: m.Description ?? "",
      keySpec,
      keyUsage: m.KeyUsage ?? "ENCRYPT_DECRYPT",
      origin,
      tags,
      ...(m.DeletionDate && { deletionDate: m.DeletionDate }),
      ...(rotation && { rotation }),
      ...(policy !== undefined && { policy }),
    };
  }

  async #perform(keyId: string, a: KeyAction): Promise<void> {
    const kms = this.ctx.kms;
    switch (a.op) {
      case "ScheduleKeyDeletion":
        await kms.send(
          new ScheduleKeyDeletionCommand({
            KeyId: keyId,
            PendingWindowInDays: a.pendingWindowDays,
          }),
        );
        return;
      case "CancelKeyDeletion":
        await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
        return;
      case "EnableKey":
        await kms.send(new EnableKeyCommand({ KeyId: keyId }));
        return;
      case "DisableKey":
        await kms.send(new DisableKeyCommand({ KeyId: keyId }));
        return;
      case "UpdateKeyDescription":
        await kms.send(
          new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: a.description }),
        );
        return;
      case "EnableKeyRotation":
        await kms.send(
          new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: a.periodDays }),
        );
        return;
      case "DisableKeyRotation":
        await kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
        return;
      case "RotateKeyOnDemand":
        await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
        return;
      case "TagResource":
        await kms.send(
          new TagResourceCommand({
            KeyId: keyId,
            Tags: Object.entries(a.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
          }),
        );
        return;
      case "UntagResource":
        await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: a.keys }));
        return;
      case "PutKeyPolicy":
        await kms.send(
          new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: a.policy }),
        );
        return;
    }
  }

  async #status(
    obj: KmsKey,
    spec: ResolvedKeySpec,
    key: ObservedKey,
    conditions: ConditionInput[],
    lastOnDemandRequest: string | undefined,
  ): Promise<KmsKeyStatus> {
    const now = this.ctx.timers.now();
    let currentVersion: number | undefined;
    let lastRotationTime: string | undefined;
    if (key.fresh) currentVersion = 1;
    else if (rotationApplies(key.keySpec, key.origin) && key.state !== "PendingDeletion") {
      const rotations = await this.#rotations(key.keyId);
      currentVersion = rotations.length + 1;
      const last = rotations.at(-1);
      if (last) lastRotationTime = rfc3339(last);
    }
    const status: KmsKeyStatus = {
      keyId: key.keyId,
      arn: key.arn,
      keyState: key.state,
      keySpec: key.keySpec,
      keyUsage: key.keyUsage,
      ...(currentVersion !== undefined && { currentVersion }),
      ...(key.rotation && { rotationEnabled: key.rotation.enabled }),
      ...(key.rotation?.enabled &&
        key.rotation.periodDays !== undefined && { rotationPeriodDays: key.rotation.periodDays }),
      ...(lastRotationTime && { lastRotationTime }),
      ...(key.rotation?.enabled &&
        key.rotation.nextRotationDate && {
          nextRotationTime: rfc3339(key.rotation.nextRotationDate),
        }),
      ...(key.deletionDate && { deletionDate: rfc3339(key.deletionDate) }),
      ...(lastOnDemandRequest !== undefined && { lastOnDemandRequest }),
      observedGeneration: obj.metadata.generation,
      conditions: setConditions(obj.status?.conditions, conditions, obj.metadata.generation, now),
    };
    void spec;
    return status;
  }

  /** Rotation dates, oldest first (empty if the key service does not list rotations). */
  async #rotations(keyId: string): Promise<Date[]> {
    const dates: Date[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await this.ctx.kms.send(
          new ListKeyRotationsCommand({
            KeyId: keyId,
            Limit: 1000,
            ...(marker && { Marker: marker }),
          }),
        );
        for (const r of page.Rotations ?? []) if (r.RotationDate) dates.push(r.RotationDate);
        marker = page.Truncated ? page.NextMarker : undefined;
      } while (marker);
    } catch (err) {
      if (isKmsError(err, "UnknownOperationException", "UnsupportedOperationException")) return [];
      throw err;
    }
    return dates.sort((a, b) => a.getTime() - b.getTime());
  }

  /** status.keyId names a key that no longer exists: deleted at the end of its pending window, or by hand. */
  async #keyGone(obj: KmsKey, spec: ResolvedKeySpec): Promise<Result> {
    const requested = spec.deletion.requested;
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
            message: requested
              ? "The key was deleted as requested; delete this object."
              : `Key ${obj.status?.keyId} no longer exists in the key service; it was deleted outside this object. Delete and recreate the object to get a new key.`,
          },
        ],
        obj.metadata.generation,
        this.ctx.timers.now(),
      ),
    };
    delete status.deletionDate;
    delete status.nextRotationTime;
    if (!requested && obj.status?.keyState !== "Deleted")
      await recordEvent(this.ctx, obj, {
        type: "Warning",
        reason: "KeyNotFound",
        message: `Key ${obj.status?.keyId} no longer exists.`,
      });
    await writeStatus(this.ctx, "KmsKey", obj, status);
    return {};
  }

  /** The object is being deleted: Delete schedules key deletion and waits for it; Retain lets go. */
  async #finalize(obj: KmsKey): Promise<Result> {
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER)) return {};
    const ctx = this.ctx;
    const spec = resolveKeySpec(obj.spec);
    const keyId = obj.status?.keyId ?? (await this.adoption.find(obj.metadata.uid));
    const observed = keyId ? await this.#observe(keyId, spec) : undefined;
    if (!observed) {
      await removeFinalizer(ctx, "KmsKey", obj);
      return {};
    }
    if (spec.deletion.policy === "Retain") {
      if (observed.state === "PendingDeletion" && !spec.deletion.requested) {
        await this.#perform(observed.keyId, { op: "CancelKeyDeletion" });
        if (spec.enabled) await this.#perform(observed.keyId, { op: "EnableKey" });
      }
      await recordEvent(ctx, obj, {
        type: "Normal",
        reason: "Retained",
        message: `Key ${observed.keyId} is kept (deletion policy Retain).`,
      });
      await removeFinalizer(ctx, "KmsKey", obj);
      return {};
    }
    let key = observed;
    if (key.state !== "PendingDeletion") {
      await this.#perform(key.keyId, {
        op: "ScheduleKeyDeletion",
        pendingWindowDays: spec.deletion.pendingWindowDays,
      });
      key = (await this.#observe(key.keyId, spec)) ?? key;
      await recordEvent(ctx, obj, {
        type: "Normal",
        reason: "DeletionScheduled",
        message: `Key ${key.keyId} will be deleted on ${key.deletionDate?.toISOString() ?? "its deletion date"}.`,
      });
    }
    const plan = { actions: [], immutableMismatch: [] };
    const status = await this.#status(
      obj,
      spec,
      key,
      keyConditions(spec, key, plan),
      obj.status?.lastOnDemandRequest,
    );
    await writeStatus(ctx, "KmsKey", obj, status);
    return { requeueAfter: requeueAfter(key, ctx.timers.now(), ctx.driftCheckMs) };
  }

  /** Puts the failure on the object (Ready/Synced False with the AWS error) so `kubectl get` shows it. */
  async #writeFailure(key: string, reason: string, message: string): Promise<void> {
    try {
      const obj = await readObject(this.ctx, "KmsKey", key);
      if (!obj) return;
      const failed: ConditionInput[] = [
        { type: "Synced", status: "False", reason, message },
        ...(obj.status?.keyId
          ? []
          : [{ type: "Ready", status: "False" as const, reason, message }]),
      ];
      await writeStatus(this.ctx, "KmsKey", obj, {
        ...obj.status,
        conditions: setConditions(
          obj.status?.conditions,
          failed,
          obj.metadata.generation,
          this.ctx.timers.now(),
        ),
      });
    } catch (err) {
      this.ctx.logger?.warn(
        { key, err: errorMessage(err) },
        "could not record a failure in status",
      );
    }
  }
}

export { UID_TAG };
