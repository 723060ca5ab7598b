/** What every reconciler works with: the cluster, the key service, time, logs. */
import { canonicalJson } from "./canonicalJson.js";
import type { KMSClient } from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import { setConditions, type ConditionInput } from "../api/v1alpha1/conditions.js";
import {
  FINALIZER,
  type Condition,
  type KindName,
  type ObjectsByKind,
} from "../api/v1alpha1/types.js";
import type { EventInput, ResourceClient, SecretClient } from "../kube/cluster.js";
import type { Clock } from "../time.js";
import { errorMessage, isSpecError, kmsErrorName } from "./kms.js";
import { TerminalError, type Result } from "./runtime/controller.js";
import { WriteThroughReader, type ObjectReader } from "./runtime/reader.js";

export interface ReconcileContext {
  readonly client: ResourceClient;
  readonly kms: KMSClient;
  readonly timers: Clock;
  readonly logger?: Logger;
  readonly reader: WriteThroughReader;
  /** How often a healthy object is re-checked for drift made through the KMS API. */
  readonly driftCheckMs: number;
  /** The key service's account id, for the ARN of a KmsKey replicaOf's primary. */
  readonly account: string;
  /** Secrets (KmsSecret), where the cluster has them. */
  readonly secrets?: SecretClient;
}

export function reconcileContext(options: {
  client: ResourceClient;
  kms: KMSClient;
  timers: Clock;
  logger?: Logger;
  read?: ObjectReader;
  driftCheckMs?: number;
  account?: string;
  secrets?: SecretClient;
}): ReconcileContext {
  const read: ObjectReader =
    options.read ?? ((kind, ns, name) => options.client.get(kind, ns, name));
  return {
    client: options.client,
    kms: options.kms,
    timers: options.timers,
    reader: new WriteThroughReader(read),
    driftCheckMs: options.driftCheckMs ?? 10 * 60_000,
    account: options.account ?? "000000000000",
    ...(options.logger && { logger: options.logger }),
    ...(options.secrets && { secrets: options.secrets }),
  };
}

export async function readObject<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  key: string,
): Promise<ObjectsByKind[K] | undefined> {
  const [namespace, name] = splitKey(key);
  return ctx.reader.read(kind, namespace, name);
}

/** Why a reconcile failed, as status and the Event show it. */
export interface Failure {
  readonly reason: string;
  readonly message: string;
}

export interface ReconcileSteps<T extends ObjectsByKind[KindName]> {
  sync(obj: T): Promise<Result>;
  finalize(obj: T): Promise<Result>;
  /** The status that records a failure (pure): Ready=False and whatever else the kind shows. */
  readonly failedStatus: (obj: T, failure: Failure, now: Date) => NonNullable<T["status"]>;
}

/**
 * The shape every reconciler shares: read the object as it is now (level-triggered),
 * finalize it if it is being deleted, else sync it. A failure takes one path for every
 * kind: recorded in status and as a Warning Event, then back to the queue, a spec
 * error as terminal (retrying will not help until the object changes).
 */
export async function reconcileObject<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  key: string,
  steps: ReconcileSteps<ObjectsByKind[K]>,
): Promise<Result> {
  const obj = await readObject(ctx, kind, key);
  if (!obj) return {};
  try {
    return obj.metadata.deletionTimestamp ? await steps.finalize(obj) : await steps.sync(obj);
  } catch (err) {
    const failure: Failure = {
      reason:
        err instanceof TerminalError ? err.reason : (kmsErrorName(err) ?? "KeyServiceUnavailable"),
      message: errorMessage(err),
    };
    await recordFailure(ctx, kind, key, failure, steps.failedStatus);
    if (isSpecError(err)) throw new TerminalError(failure.reason, failure.message);
    throw err;
  }
}

/**
 * Puts a failure on the object so `kubectl get` and `kubectl describe` show it: the
 * status from `failedStatus`, and a Warning Event when that status is news (a retry
 * failing the same way again records nothing more). Never throws: the reconcile's own
 * error is what goes back to the queue.
 */
async function recordFailure<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  key: string,
  failure: Failure,
  failedStatus: ReconcileSteps<ObjectsByKind[K]>["failedStatus"],
): Promise<void> {
  try {
    const obj = await readObject(ctx, kind, key);
    if (!obj) return;
    const status = failedStatus(obj, failure, ctx.timers.now());
    if (canonicalJson(obj.status ?? {}) === canonicalJson(status)) return;
    await writeStatus(ctx, kind, obj, status);
    await recordEvent(ctx, obj, { type: "Warning", ...failure });
  } catch (err) {
    ctx.logger?.warn({ key, err: errorMessage(err) }, "could not record a failure in status");
  }
}

/**
 * `status` with `fields` replaced and `conditions` merged in, at the object's
 * generation (KmsAlias and KmsGrant, whose status is their conditions and a few ids).
 */
export function conditionedStatus<
  S extends { observedGeneration?: number; conditions?: Condition[] },
>(
  obj: { metadata: { generation: number }; status?: S },
  fields: Partial<S>,
  conditions: readonly ConditionInput[],
  now: Date,
): S {
  return {
    ...obj.status,
    ...fields,
    observedGeneration: obj.metadata.generation,
    conditions: setConditions(obj.status?.conditions, conditions, obj.metadata.generation, now),
  } as S;
}

/** The failure status of a kind whose only condition is Ready. */
export const notReadyStatus = <S extends { observedGeneration?: number; conditions?: Condition[] }>(
  obj: { metadata: { generation: number }; status?: S },
  failure: Failure,
  now: Date,
): S => conditionedStatus(obj, {}, [{ type: "Ready", status: "False", ...failure }], now);

export function splitKey(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}

export async function addFinalizer<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  obj: ObjectsByKind[K],
): Promise<ObjectsByKind[K]> {
  const finalizers = obj.metadata.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return obj;
  const updated = await ctx.client.setFinalizers(kind, obj, [...finalizers, FINALIZER]);
  ctx.reader.wrote(kind, obj, updated);
  return updated ?? obj;
}

export async function removeFinalizer<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  obj: ObjectsByKind[K],
): Promise<void> {
  const finalizers = obj.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return;
  const updated = await ctx.client.setFinalizers(
    kind,
    obj,
    finalizers.filter((f) => f !== FINALIZER),
  );
  ctx.reader.wrote(kind, obj, updated);
}

/** Writes status if its content changed (key order aside); returns the object as stored. */
export async function writeStatus<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  obj: ObjectsByKind[K],
  status: NonNullable<ObjectsByKind[K]["status"]>,
): Promise<ObjectsByKind[K]> {
  if (canonicalJson(obj.status ?? {}) === canonicalJson(status)) return obj;
  const updated = await ctx.client.patchStatus(kind, obj, status);
  ctx.reader.wrote(kind, obj, updated);
  return updated;
}

export async function recordEvent(
  ctx: ReconcileContext,
  obj: ObjectsByKind[KindName],
  event: EventInput,
): Promise<void> {
  ctx.logger?.info(
    {
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
      reason: event.reason,
    },
    event.message,
  );
  await ctx.client.recordEvent(obj, event);
}
