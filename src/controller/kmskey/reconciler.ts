/**
 * KmsKey → a key in the key service. Level-triggered, in three steps: observe (the
 * object, and the key as the key service reports it: metadata, tags, rotation status
 * and rotations, policy), decide (decide.ts: the calls to make; status.ts: the status,
 * both pure), act (make the calls, observing again after any, write the status, ask to
 * be woken at the next rotation or deletion date). Safe to run twice and after a
 * crash at any point (the UID tag ties the key to the object).
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
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateKeyDescriptionCommand,
  type KeyMetadata,
} from "@aws-sdk/client-kms";
import { resolveKeySpec, type ResolvedKeySpec } from "../../api/v1alpha1/defaults.js";
import { ADOPT_ANNOTATION, FINALIZER, UID_TAG, type KmsKey } from "../../api/v1alpha1/types.js";
import {
  addFinalizer,
  reconcileObject,
  recordEvent,
  removeFinalizer,
  writeStatus,
  type ReconcileContext,
} from "../context.js";
import { isKmsError, kmsErrorName } from "../kms.js";
import { TerminalError, type Result } from "../runtime/controller.js";
import type { Watch } from "../runtime/watches.js";
import { KeyAdoptionIndex } from "./adoption.js";
import {
  desiredTags,
  isCorrection,
  planKey,
  requeueAfter,
  rotationApplies,
  type KeyAction,
  type ObservedKey,
} from "./decide.js";
import { keyFailedStatus, keyGoneStatus, keyStatus } from "./status.js";

export class KmsKeyReconciler {
  /** Only its own objects (and their timers) wake it. */
  static readonly watches: readonly Watch<"KmsKey">[] = [];

  readonly adoption: KeyAdoptionIndex;
  constructor(readonly ctx: ReconcileContext) {
    this.adoption = new KeyAdoptionIndex(ctx.kms);
  }

  readonly reconcile = (key: string): Promise<Result> =>
    reconcileObject(this.ctx, "KmsKey", key, {
      sync: (obj) => this.#sync(obj),
      finalize: (obj) => this.#finalize(obj),
      failedStatus: keyFailedStatus,
    });

  async #sync(initial: KmsKey): Promise<Result> {
    const ctx = this.ctx;
    const spec = resolveKeySpec(initial.spec);
    const obj = await addFinalizer(ctx, "KmsKey", initial);
    // Observe.
    const found = await this.#findKey(obj, spec);
    if (found.adopted)
      await recordEvent(ctx, obj, {
        type: "Normal",
        reason: "Adopted",
        message: `Adopted existing key ${found.adopted}.`,
      });
    let observed = found.key;
    let created = false;
    if (!observed) {
      if (obj.status?.keyId) return this.#keyGone(obj, spec);
      observed = await this.#create(obj, spec);
      created = true;
    }
    // Decide.
    const plan = planKey(spec, observed, obj.metadata.uid, obj.status?.lastOnDemandRequest);
    // Act, then observe what the actions made.
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
    const now = ctx.timers.now();
    await writeStatus(
      ctx,
      "KmsKey",
      obj,
      keyStatus({ obj, spec, key: observed, plan, lastOnDemandRequest, now }),
    );
    return { requeueAfter: requeueAfter(observed, now, ctx.driftCheckMs) };
  }

  /**
   * The key this object owns: by status.keyId, else by the adopt annotation (`adopted`:
   * its id), else by the UID tag.
   */
  async #findKey(
    obj: KmsKey,
    spec: ResolvedKeySpec,
  ): Promise<{ key: ObservedKey | undefined; adopted?: string }> {
    if (obj.status?.keyId) return { key: await this.#observe(obj.status.keyId, spec) };
    const wanted = obj.metadata.annotations?.[ADOPT_ANNOTATION];
    if (wanted) {
      const key = await this.#observe(wanted, spec);
      if (!key)
        throw new TerminalError(
          "AdoptionFailed",
          `${ADOPT_ANNOTATION} names key ${wanted}, which does not exist`,
        );
      return { key, adopted: key.keyId };
    }
    const keyId = await this.adoption.find(obj.metadata.uid);
    return { key: keyId ? await this.#observe(keyId, spec) : undefined };
  }

  async #create(obj: KmsKey, spec: ResolvedKeySpec): Promise<ObservedKey> {
    const tags = desiredTags(spec, obj.metadata.uid);
    let metadata: KeyMetadata | undefined;
    try {
      if (spec.replicaOf) metadata = await this.#replicate(spec, spec.replicaOf, tags);
      else {
        const out = await this.ctx.kms.send(
          new CreateKeyCommand({
            ...(spec.multiRegion && { MultiRegion: true }),
            Description: spec.description,
            KeySpec: spec.keySpec as never,
            KeyUsage: spec.keyUsage as never,
            Origin: spec.origin as never,
            ...(spec.customKeyStoreId !== undefined && { CustomKeyStoreId: spec.customKeyStoreId }),
            ...(spec.xksKeyId !== undefined && { XksKeyId: spec.xksKeyId }),
            ...(spec.policy !== undefined && { Policy: spec.policy }),
            Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
          }),
        );
        metadata = out.KeyMetadata;
      }
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
      ...(metadata.CustomKeyStoreId !== undefined && {
        customKeyStoreId: metadata.CustomKeyStoreId,
      }),
      ...multiRegionOf(metadata),
      ...(metadata.XksKeyConfiguration?.Id !== undefined && {
        xksKeyId: metadata.XksKeyConfiguration.Id,
      }),
      tags,
      fresh: true,
      ...(rotationApplies(keySpec, origin) &&
        metadata.KeyState === "Enabled" && { rotation: { enabled: false } }),
      ...(spec.policy !== undefined && { policy: spec.policy }),
    };
  }

  /**
   * A replica in this cluster's Region of a primary in another (spec.replicaOf): ReplicateKey
   * with the primary's ARN and this Region as the replica Region; the key service asks the
   * primary's instance, which creates the replica here through peering (docs/multi-region.md).
   * Description, policy and tags are the replica's own.
   */
  async #replicate(
    spec: ResolvedKeySpec,
    of: { region: string; keyId: string },
    tags: Record<string, string>,
  ): Promise<KeyMetadata | undefined> {
    const out = await this.ctx.kms.send(
      new ReplicateKeyCommand({
        KeyId: `arn:aws:kms:${of.region}:${this.ctx.account}:key/${of.keyId}`,
        ReplicaRegion: await this.ctx.kms.config.region(),
        Description: spec.description,
        ...(spec.policy !== undefined && { Policy: spec.policy }),
        Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
      }),
    );
    return out.ReplicaKeyMetadata;
  }

  /** Reads everything status and the plan need about the key; undefined if it does not exist (any more). */
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
    let rotations: Date[] | undefined;
    if (rotationApplies(keySpec, origin) && m.KeyState !== "PendingDeletion") {
      const r = await kms.send(new GetKeyRotationStatusCommand({ KeyId: id }));
      rotation = {
        enabled: r.KeyRotationEnabled ?? false,
        ...(r.RotationPeriodInDays !== undefined && { periodDays: r.RotationPeriodInDays }),
        ...(r.NextRotationDate && { nextRotationDate: r.NextRotationDate }),
      };
      rotations = await this.#rotations(id);
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
      ...(m.CustomKeyStoreId !== undefined && { customKeyStoreId: m.CustomKeyStoreId }),
      ...multiRegionOf(m),
      ...(m.XksKeyConfiguration?.Id !== undefined && { xksKeyId: m.XksKeyConfiguration.Id }),
      tags,
      ...(m.DeletionDate && { deletionDate: m.DeletionDate }),
      ...(rotation && { rotation }),
      ...(rotations && { rotations }),
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
    if (!spec.deletion.requested && obj.status?.keyState !== "Deleted")
      await recordEvent(this.ctx, obj, {
        type: "Warning",
        reason: "KeyNotFound",
        message: `Key ${obj.status?.keyId} no longer exists.`,
      });
    await writeStatus(this.ctx, "KmsKey", obj, keyGoneStatus(obj, spec, this.ctx.timers.now()));
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
    const now = ctx.timers.now();
    await writeStatus(
      ctx,
      "KmsKey",
      obj,
      keyStatus({
        obj,
        spec,
        key,
        plan: { actions: [], immutableMismatch: [] },
        lastOnDemandRequest: obj.status?.lastOnDemandRequest,
        now,
      }),
    );
    return { requeueAfter: requeueAfter(key, now, ctx.driftCheckMs) };
  }
}

/** MultiRegionKeyType and the primary's Region of a multi-Region key. */
function multiRegionOf(m: KeyMetadata): Pick<ObservedKey, "multiRegionKeyType" | "primaryRegion"> {
  const c = m.MultiRegionConfiguration;
  return {
    ...(c?.MultiRegionKeyType !== undefined && { multiRegionKeyType: c.MultiRegionKeyType }),
    ...(c?.PrimaryKey?.Region !== undefined && { primaryRegion: c.PrimaryKey.Region }),
  };
}

export { UID_TAG };
