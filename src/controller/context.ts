/** What every reconciler works with: the cluster, the key service, time, logs. */
import type { KMSClient } from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import { FINALIZER, type KindName, type ObjectsByKind } from "../api/v1alpha1/types.js";
import type { EventInput, ResourceClient } from "../kube/cluster.js";
import type { Timers } from "./runtime/timers.js";
import { WriteThroughReader, type ObjectReader } from "./runtime/reader.js";

export interface ReconcileContext {
  readonly client: ResourceClient;
  readonly kms: KMSClient;
  readonly timers: Timers;
  readonly logger?: Logger;
  readonly reader: WriteThroughReader;
  /** How often a healthy object is re-checked for drift made through the KMS API. */
  readonly driftCheckMs: number;
}

export function reconcileContext(options: {
  client: ResourceClient;
  kms: KMSClient;
  timers: Timers;
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

/** Writes status if it changed; returns the object as stored. */
export async function writeStatus<K extends KindName>(
  ctx: ReconcileContext,
  kind: K,
  obj: ObjectsByKind[K],
  status: NonNullable<ObjectsByKind[K]["status"]>,
): Promise<ObjectsByKind[K]> {
  if (JSON.stringify(obj.status ?? {}) === JSON.stringify(status)) return obj;
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
