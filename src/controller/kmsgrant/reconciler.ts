/**
 * KmsGrant → a grant in the key service. A spec change creates the new grant and
 * then revokes the old one (no gap in access); deleting the object revokes the
 * grant. The grant token CreateGrant returns is dropped on the spot: it never
 * reaches status, events or logs.
 */
import {
  CreateGrantCommand,
  ListGrantsCommand,
  RevokeGrantCommand,
  type GrantListEntry,
} from "@aws-sdk/client-kms";
import type { ConditionInput } from "../../api/v1alpha1/conditions.js";
import { FINALIZER, type KmsGrant, type KmsGrantStatus } from "../../api/v1alpha1/types.js";
import {
  addFinalizer,
  conditionedStatus,
  notReadyStatus,
  reconcileObject,
  recordEvent,
  removeFinalizer,
  writeStatus,
  type ReconcileContext,
} from "../context.js";
import { keyRefWatch, resolveKeyRef } from "../keyRef.js";
import { isKmsError } from "../kms.js";
import type { Result } from "../runtime/controller.js";
import { fingerprint, grantName, grantParameters, type GrantParameters } from "./decide.js";

const WAIT_MS = 60_000;

export class KmsGrantReconciler {
  /** Besides its own objects: the KmsKey each refers to. */
  static readonly watches = [keyRefWatch];

  constructor(readonly ctx: ReconcileContext) {}

  readonly reconcile = (key: string): Promise<Result> =>
    reconcileObject(this.ctx, "KmsGrant", key, {
      sync: (obj) => this.#sync(obj),
      finalize: (obj) => this.#finalize(obj),
      failedStatus: notReadyStatus,
    });

  async #sync(initial: KmsGrant): Promise<Result> {
    const ctx = this.ctx;
    const obj = await addFinalizer(ctx, "KmsGrant", initial);
    const keyArn = (await resolveKeyRef(ctx, obj, "KeyNotFound"))?.arn;
    if (!keyArn) {
      await this.#write(
        obj,
        {},
        {
          type: "Ready",
          status: "False",
          reason: "KeyNotReady",
          message: `KmsKey ${obj.spec.keyRef?.name} does not exist or has no key yet.`,
        },
      );
      return { requeueAfter: WAIT_MS };
    }
    const params = grantParameters(obj, keyArn);
    const fp = fingerprint(params);
    const name = grantName(obj.metadata.uid, fp);
    const status = obj.status ?? {};
    const same = status.grantId !== undefined && status.fingerprint === fp;
    let grantId = status.grantId;
    if (same && (await this.#exists(keyArn, grantId!))) {
      // Nothing to do.
    } else {
      const existing = await this.#findByName(keyArn, name);
      grantId = existing?.GrantId ?? (await this.#create(params, name));
      if (same)
        await recordEvent(ctx, obj, {
          type: "Warning",
          reason: "DriftCorrected",
          message: `Grant ${status.grantId} was gone; created grant ${grantId}.`,
        });
      else if (status.grantId && status.keyArn) {
        await this.#revoke(status.keyArn, status.grantId);
        await recordEvent(ctx, obj, {
          type: "Normal",
          reason: "Replaced",
          message: `The spec changed: created grant ${grantId} and revoked ${status.grantId}.`,
        });
      } else if (!existing)
        await recordEvent(ctx, obj, {
          type: "Normal",
          reason: "Created",
          message: `Created grant ${grantId} on ${keyArn}.`,
        });
    }
    await this.#write(
      obj,
      { grantId: grantId!, keyArn, granteePrincipal: params.granteePrincipal, fingerprint: fp },
      {
        type: "Ready",
        status: "True",
        reason: "GrantActive",
        message: `Grant ${grantId} gives ${params.granteePrincipal} ${params.operations.join(", ")}.`,
      },
    );
    return { requeueAfter: ctx.driftCheckMs };
  }

  async #create(p: GrantParameters, name: string): Promise<string> {
    const out = await this.ctx.kms.send(
      new CreateGrantCommand({
        KeyId: p.keyArn,
        GranteePrincipal: p.granteePrincipal,
        Operations: p.operations as never,
        Name: name,
        ...(p.constraints && { Constraints: p.constraints }),
        ...(p.retiringPrincipal && { RetiringPrincipal: p.retiringPrincipal }),
      }),
    );
    // out.GrantToken is deliberately not kept anywhere.
    return out.GrantId!;
  }

  async #grants(keyArn: string, grantId?: string): Promise<GrantListEntry[]> {
    const all: GrantListEntry[] = [];
    let marker: string | undefined;
    do {
      const page = await this.ctx.kms.send(
        new ListGrantsCommand({
          KeyId: keyArn,
          Limit: 100,
          ...(grantId && { GrantId: grantId }),
          ...(marker && { Marker: marker }),
        }),
      );
      all.push(...(page.Grants ?? []));
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return all;
  }

  async #exists(keyArn: string, grantId: string): Promise<boolean> {
    try {
      return (await this.#grants(keyArn, grantId)).some((g) => g.GrantId === grantId);
    } catch (err) {
      if (isKmsError(err, "NotFoundException", "InvalidGrantIdException")) return false;
      throw err;
    }
  }

  async #findByName(keyArn: string, name: string): Promise<GrantListEntry | undefined> {
    return (await this.#grants(keyArn)).find((g) => g.Name === name);
  }

  async #revoke(keyArn: string, grantId: string): Promise<void> {
    try {
      await this.ctx.kms.send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: grantId }));
    } catch (err) {
      // Already revoked or retired, or the key is gone: the grant is gone too.
      if (!isKmsError(err, "NotFoundException", "InvalidGrantIdException")) throw err;
    }
  }

  async #finalize(obj: KmsGrant): Promise<Result> {
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER)) return {};
    if (obj.status?.grantId && obj.status.keyArn) {
      await this.#revoke(obj.status.keyArn, obj.status.grantId);
      await recordEvent(this.ctx, obj, {
        type: "Normal",
        reason: "Revoked",
        message: `Revoked grant ${obj.status.grantId}.`,
      });
    }
    await removeFinalizer(this.ctx, "KmsGrant", obj);
    return {};
  }

  async #write(
    obj: KmsGrant,
    fields: Partial<KmsGrantStatus>,
    ready: ConditionInput,
  ): Promise<void> {
    await writeStatus(
      this.ctx,
      "KmsGrant",
      obj,
      conditionedStatus(obj, fields, [ready], this.ctx.timers.now()),
    );
  }
}
