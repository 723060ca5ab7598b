/**
 * KmsAlias → an alias in the key service. The alias is owned once this object has
 * created or adopted it (status.aliasName); an alias of the same name that points at
 * another key and is not owned is a conflict, reported as a condition and re-checked
 * slowly, never a crash loop.
 */
import {
  CreateAliasCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  UpdateAliasCommand,
} from "@aws-sdk/client-kms";
import type { ConditionInput } from "../../api/v1alpha1/conditions.js";
import { aliasName } from "../../api/v1alpha1/defaults.js";
import { FINALIZER, type KmsAlias, type KmsAliasStatus } from "../../api/v1alpha1/types.js";
import {
  addFinalizer,
  conditionedStatus,
  notReadyStatus,
  readObject,
  reconcileObject,
  recordEvent,
  removeFinalizer,
  writeStatus,
  type ReconcileContext,
} from "../context.js";
import { keyRefWatch, resolveKeyRef } from "../keyRef.js";
import { isKmsError } from "../kms.js";
import type { Result } from "../runtime/controller.js";
import { decideAlias } from "./decide.js";

/** How often an alias waiting on something outside it (a conflict, a key not ready) is re-checked. */
const WAIT_MS = 60_000;

export class KmsAliasReconciler {
  /** Besides its own objects: the KmsKey each refers to. */
  static readonly watches = [keyRefWatch];

  constructor(readonly ctx: ReconcileContext) {}

  readonly reconcile = (key: string): Promise<Result> =>
    reconcileObject(this.ctx, "KmsAlias", key, {
      sync: (obj) => this.#sync(obj),
      finalize: (obj) => this.#finalize(obj),
      failedStatus: notReadyStatus,
    });

  async #sync(initial: KmsAlias): Promise<Result> {
    const ctx = this.ctx;
    const obj = await addFinalizer(ctx, "KmsAlias", initial);
    const name = aliasName(obj);
    const target = (await resolveKeyRef(ctx, obj, "TargetNotFound"))?.keyId;
    if (!target) {
      await this.#setStatus(obj, {}, [
        {
          type: "Ready",
          status: "False",
          reason: "TargetNotReady",
          message: `KmsKey ${obj.spec.targetKeyRef?.name} does not exist or has no key yet.`,
        },
      ]);
      return { requeueAfter: WAIT_MS };
    }
    const owned = obj.status?.aliasName;
    if (owned && owned !== name) {
      // The name changed: drop the alias this object made under the old name.
      if ((await this.#pointsTo(owned)) === obj.status?.targetKeyId)
        await ctx.kms.send(new DeleteAliasCommand({ AliasName: owned }));
    }
    const current = await this.#pointsTo(name);
    const decision = decideAlias(current, target, owned === name);
    switch (decision.action) {
      case "create":
        await ctx.kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: target }));
        await recordEvent(ctx, obj, {
          type: "Normal",
          reason: "Created",
          message: `Created ${name} → ${target}.`,
        });
        break;
      case "update":
        await ctx.kms.send(new UpdateAliasCommand({ AliasName: name, TargetKeyId: target }));
        await recordEvent(ctx, obj, {
          type: "Normal",
          reason: "Updated",
          message: `Pointed ${name} at ${target}.`,
        });
        break;
      case "conflict":
        await this.#setStatus(obj, {}, [
          {
            type: "Ready",
            status: "False",
            reason: "AliasConflict",
            message: `${name} already points to key ${decision.pointsTo}, which this KmsAlias does not manage; delete that alias or choose another spec.name.`,
          },
        ]);
        return { requeueAfter: WAIT_MS };
      case "none":
        break;
    }
    await this.#setStatus(obj, { aliasName: name, targetKeyId: target }, [
      {
        type: "Ready",
        status: "True",
        reason: "AliasReady",
        message: `${name} points to ${target}.`,
      },
    ]);
    return { requeueAfter: ctx.driftCheckMs };
  }

  /** The key id an alias points to, or undefined if there is no such alias. */
  async #pointsTo(name: string): Promise<string | undefined> {
    try {
      const out = await this.ctx.kms.send(new DescribeKeyCommand({ KeyId: name }));
      return out.KeyMetadata?.KeyId;
    } catch (err) {
      if (isKmsError(err, "NotFoundException")) return undefined;
      throw err;
    }
  }

  async #finalize(obj: KmsAlias): Promise<Result> {
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER)) return {};
    const owned = obj.status?.aliasName;
    if (owned) {
      const current = await this.#pointsTo(owned);
      if (current !== undefined && current === obj.status?.targetKeyId) {
        try {
          await this.ctx.kms.send(new DeleteAliasCommand({ AliasName: owned }));
        } catch (err) {
          if (!isKmsError(err, "NotFoundException")) throw err;
        }
      }
    }
    await removeFinalizer(this.ctx, "KmsAlias", obj);
    return {};
  }

  /**
   * Writes status: `owned` replaces aliasName/targetKeyId ({} keeps what is recorded),
   * conditions are merged in, onto the object as last written.
   */
  async #setStatus(
    obj: KmsAlias,
    owned: Partial<KmsAliasStatus>,
    conditions: ConditionInput[],
  ): Promise<void> {
    const fresh =
      (await readObject(this.ctx, "KmsAlias", `${obj.metadata.namespace}/${obj.metadata.name}`)) ??
      obj;
    await writeStatus(
      this.ctx,
      "KmsAlias",
      fresh,
      conditionedStatus(fresh, owned, conditions, this.ctx.timers.now()),
    );
  }
}
