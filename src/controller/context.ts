/** What every reconciler works with: the cluster, the key service, time, logs. */
import { canonicalJson } from "./canonicalJson.js";
import type { KMSClient } from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import { FINALIZER, type KindName, type ObjectsByKind } from "../api/v1alpha1/types.js";
import type { EventInput, ResourceClient } from "../kube/cluster.js";
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
}

export function reconcileContext(options: {
  client: ResourceClient;
  kms: KMSClient;
  timers: Clock;
  logger?: Logger;
  read?: ObjectReader;
  driftCheckMs?: number;
}): ReconcileContext {
  const read: ObjectReader =
    options.read ?? ((kind, ns, name) => options.client.get(kind, ns, name));
  return {
    client: options.client,
    kms: options.kms,
    timers: options.timers,
    reader: new WriteThroughReader(read),
    driftCheckMs: options.driftCheckMs ?? 10 * 60_000,
    ...(options.logger && { logger: options.logger }),
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

export interface ReconcileSteps<T> {
  sync(obj: T): Promise<Result>;
  finalize(obj: T): Promise<Result>;
  /** Records Ready=False (and whatever else the kind shows) with the failure's reason. */
  failed(key: string, reason: string, message: string): Promise<void>;
}

/**
 * The shape every reconciler shares: read the object as it is now (level-triggered),
 * finalize it if it is being deleted, else sync it; on failure record the reason in
 * status before the error goes back to the queue, a spec error as terminal (retrying
 * will not help until the object changes).
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
    const reason =
      err instanceof TerminalError ? err.reason : (kmsErrorName(err) ?? "KeyServiceUnavailable");
    await steps.failed(key, reason, errorMessage(err));
    if (isSpecError(err)) throw new TerminalError(reason, errorMessage(err));
    throw err;
  }
}

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
