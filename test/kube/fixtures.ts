/**
 * Fixture builders for operator tests (cert-manager style): `kmsKey("a", withRotation(90))`,
 * plus a harness that runs the reconcilers against the in-memory API server and
 * the real key service in process, on one ManualClock.
 */
import type { KMSClient } from "@aws-sdk/client-kms";
import type { KmsAlias, KmsGrant, KmsKey, KmsKeySpec } from "../../src/api/v1alpha1/types.js";
import { API_VERSION, KINDS, type KindName } from "../../src/api/v1alpha1/types.js";
import { reconcileContext, type ReconcileContext } from "../../src/controller/context.js";
import { KmsAliasReconciler } from "../../src/controller/kmsalias/reconciler.js";
import { KmsGrantReconciler } from "../../src/controller/kmsgrant/reconciler.js";
import { KmsKeyReconciler } from "../../src/controller/kmskey/reconciler.js";
import { countKmsCalls } from "../../src/controller/kms.js";
import { ManualClock } from "../support/manualClock.js";
import type { Cluster } from "../../src/kube/cluster.js";
import { embeddedCluster } from "../../src/kube/embedded/cluster.js";
import { MemoryApiServer } from "../support/kube/memoryApiServer.js";
import { kmsClient, startInProcess, type InProcessServer } from "../support/server.js";

type KeyOption = (spec: KmsKeySpec) => void;
export const withRotation =
  (periodDays: number): KeyOption =>
  (s) => {
    s.rotation = { enabled: true, periodDays };
  };
export const withDescription =
  (description: string): KeyOption =>
  (s) => {
    s.description = description;
  };
export const disabled: KeyOption = (s) => {
  s.enabled = false;
};
export const withTags =
  (tags: Record<string, string>): KeyOption =>
  (s) => {
    s.tags = tags;
  };
export const withDeletion =
  (d: NonNullable<KmsKeySpec["deletion"]>): KeyOption =>
  (s) => {
    s.deletion = d;
  };

export function kmsKey(name: string, ...options: KeyOption[]): Record<string, unknown> {
  const spec: KmsKeySpec = {};
  for (const o of options) o(spec);
  return { apiVersion: API_VERSION, kind: "KmsKey", metadata: { name }, spec };
}

export function kmsAlias(name: string, spec: KmsAlias["spec"]): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: "KmsAlias", metadata: { name }, spec };
}

export function kmsGrant(name: string, spec: KmsGrant["spec"]): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: "KmsGrant", metadata: { name }, spec };
}

export interface Harness {
  readonly clock: ManualClock;
  readonly api: MemoryApiServer;
  readonly cluster: Cluster;
  readonly kms: KMSClient;
  readonly kmsCalls: Map<string, number>;
  readonly service: InProcessServer;
  readonly ctx: ReconcileContext;
  readonly keys: KmsKeyReconciler;
  readonly aliases: KmsAliasReconciler;
  readonly grants: KmsGrantReconciler;
  create(obj: Record<string, unknown>, namespace?: string): string;
  key(name: string, namespace?: string): KmsKey;
  alias(name: string, namespace?: string): KmsAlias;
  grant(name: string, namespace?: string): KmsGrant;
  events(name?: string): { reason: string; type: string; message: string }[];
  /** Moves time forward and lets the key service perform what fell due. */
  advance(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export const NS = "team-a";
export const DAY = 86_400_000;

/** `args`: more `serve` flags for the key service (e.g. --pkcs11-module). */
export async function harness(args: readonly string[] = []): Promise<Harness> {
  const clock = new ManualClock("2026-03-01T00:00:00Z");
  const service = await startInProcess({ clock, args });
  const kms = kmsClient(service);
  const kmsCalls = countKmsCalls(kms);
  signWithClock(kms, clock);
  const api = new MemoryApiServer({ clock });
  const cluster = embeddedCluster(api, { timers: clock });
  const ctx = reconcileContext({ client: cluster, kms, timers: clock });
  const get = (kind: KindName, name: string, namespace = NS) =>
    api.get(KINDS[kind].plural, namespace, name) as never;
  return {
    clock,
    api,
    cluster,
    kms,
    kmsCalls,
    service,
    ctx,
    keys: new KmsKeyReconciler(ctx),
    aliases: new KmsAliasReconciler(ctx),
    grants: new KmsGrantReconciler(ctx),
    create(obj, namespace = NS) {
      const kind = obj["kind"] as KindName;
      const created = api.create(KINDS[kind].plural, namespace, obj);
      return `${namespace}/${created.metadata.name}`;
    },
    key: (name, namespace) => get("KmsKey", name, namespace),
    alias: (name, namespace) => get("KmsAlias", name, namespace),
    grant: (name, namespace) => get("KmsGrant", name, namespace),
    events(name) {
      // In the order they were recorded (a list is sorted by name, and event names are random).
      return api
        .list("events", NS)
        .items.sort(
          (a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
        )
        .filter(
          (e) => name === undefined || (e["involvedObject"] as { name: string }).name === name,
        )
        .map((e) => ({
          reason: String(e["reason"]),
          type: String(e["type"]),
          message: String(e["message"]),
        }));
    },
    async advance(ms) {
      clock.advance(ms);
      await service.running.lifecycle.check();
    },
    async stop() {
      kms.destroy();
      await service.stop();
    },
  };
}

/** Signs requests with the fake clock's time, so the key service (on the same clock) accepts them. */
export function signWithClock(kms: KMSClient, clock: { now(): Date }): void {
  kms.middlewareStack.add(
    (next) => async (args) => {
      (kms.config as { systemClockOffset: number }).systemClockOffset =
        clock.now().getTime() - Date.now();
      return next(args);
    },
    { step: "initialize", name: "keyhavenFakeClockSigning" },
  );
}
