/**
 * Wires the operator together: one informer per kind (started at once, so caches
 * are warm), and — only while this replica leads — one controller per kind fed by
 * the informers. Status-only updates do not re-trigger a reconcile (the generation
 * did not change). Each reconciler declares what else wakes it (its `watches`: the
 * aliases and grants that refer to a KmsKey, through an index kept by the informers).
 * Losing the lease stops every reconcile at once and ends run() with "lost".
 */
import type { KMSClient } from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import {
  FINALIZER,
  type KindName,
  type KubeObject,
  type ObjectsByKind,
} from "../api/v1alpha1/types.js";
import type { Cluster, SecretClient } from "../kube/cluster.js";
import type { Informer, InformerEvent } from "../kube/informer.js";
import { reconcileContext, type ReconcileContext } from "./context.js";
import { KmsAliasReconciler } from "./kmsalias/reconciler.js";
import { KmsGrantReconciler } from "./kmsgrant/reconciler.js";
import { KmsKeyReconciler } from "./kmskey/reconciler.js";
import { KmsSecretReconciler } from "./kmssecret/reconciler.js";
import { Controller, type ReconcileFn, type Result } from "./runtime/controller.js";
import { LeaderElector } from "./runtime/leaderElection.js";
import type { ControllerMetrics } from "./runtime/metrics.js";
import { systemClock, type Clock } from "../time.js";
import { RefIndex, type AnyWatch } from "./runtime/watches.js";

export interface LeaderElectionConfig {
  readonly namespace: string;
  readonly name?: string;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
}

export interface ManagerOptions {
  readonly cluster: Cluster;
  readonly kms: KMSClient;
  readonly timers?: Clock;
  readonly logger?: Logger;
  readonly metrics?: ControllerMetrics;
  /** false: lead at once (one replica, or `serve --seed`). */
  readonly leaderElection: LeaderElectionConfig | false;
  readonly workers?: number;
  readonly driftCheckMs?: number;
  /** The key service's account id (KmsKey replicaOf). */
  readonly account?: string;
  /** Wraps every reconcile (tests observe concurrency with it). */
  readonly around?: (kind: KindName, key: string, run: () => Promise<Result>) => Promise<Result>;
}

const KIND_NAMES: readonly KindName[] = ["KmsKey", "KmsAlias", "KmsGrant", "KmsSecret"];

/** Each kind's reconciler, and what besides its own objects wakes it. */
const RECONCILERS: {
  readonly [K in KindName]: {
    readonly make: (ctx: ReconcileContext) => ReconcileFn;
    readonly watches: readonly AnyWatch<K>[];
  };
} = {
  KmsKey: {
    make: (ctx) => new KmsKeyReconciler(ctx).reconcile,
    watches: KmsKeyReconciler.watches,
  },
  KmsAlias: {
    make: (ctx) => new KmsAliasReconciler(ctx).reconcile,
    watches: KmsAliasReconciler.watches,
  },
  KmsGrant: {
    make: (ctx) => new KmsGrantReconciler(ctx).reconcile,
    watches: KmsGrantReconciler.watches,
  },
  KmsSecret: {
    make: (ctx) => new KmsSecretReconciler(ctx).reconcile,
    watches: KmsSecretReconciler.watches,
  },
};

const keyOf = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;

/** Whether an update is worth a reconcile: spec, deletion, our finalizer gone, annotations, labels. */
export function needsReconcile(obj: KubeObject, old: KubeObject | undefined): boolean {
  if (!old) return true;
  const m = obj.metadata;
  const o = old.metadata;
  return (
    m.generation !== o.generation ||
    m.deletionTimestamp !== o.deletionTimestamp ||
    // Our own finalizer being added is no news; it disappearing (someone removed it) is.
    ((o.finalizers ?? []).includes(FINALIZER) && !(m.finalizers ?? []).includes(FINALIZER)) ||
    JSON.stringify(m.annotations ?? {}) !== JSON.stringify(o.annotations ?? {}) ||
    JSON.stringify(m.labels ?? {}) !== JSON.stringify(o.labels ?? {})
  );
}

/** Secrets behind the leader fence: every call checks leadership first. */
function fencedSecrets(secrets: SecretClient, fenced: () => void): SecretClient {
  return {
    getSecret: async (ns, name) => (fenced(), secrets.getSecret(ns, name)),
    createSecret: async (s) => (fenced(), secrets.createSecret(s)),
    replaceSecret: async (s) => (fenced(), secrets.replaceSecret(s)),
    deleteSecret: async (ns, name, uid) => (fenced(), secrets.deleteSecret(ns, name, uid)),
  };
}

/** A write attempted after leadership ended: dropped, never sent. */
export class NotLeaderError extends Error {
  override name = "NotLeaderError";
  constructor() {
    super("not the leader: the write was not sent");
  }
}

export class Manager {
  readonly #o: ManagerOptions;
  readonly #timers: Clock;
  readonly #informers: { [K in KindName]: Informer<ObjectsByKind[K]> };
  /** The kinds this manager runs: KmsSecret only where the cluster has Secrets. */
  readonly #kinds: readonly KindName[];
  #controllers: Partial<Record<KindName, Controller>> = {};
  #synced = false;
  #elector: LeaderElector | undefined;
  readonly ctx: ReconcileContext;
  /** Set while leading; once aborted, no further KMS call or API write leaves this replica. */
  #fence: AbortSignal | undefined;

  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemClock;
    const c = options.cluster;
    this.#informers = {
      KmsKey: c.informer("KmsKey"),
      KmsAlias: c.informer("KmsAlias"),
      KmsGrant: c.informer("KmsGrant"),
      KmsSecret: c.informer("KmsSecret"),
    };
    this.#kinds = KIND_NAMES.filter((k) => k !== "KmsSecret" || c.secrets !== undefined);
    const fenced = (): void => {
      if (!this.#fence || this.#fence.aborted) throw new NotLeaderError();
    };
    options.kms.middlewareStack.add(
      (next) => async (args) => {
        fenced();
        return next(args);
      },
      { step: "initialize", name: "keyhavenLeaderFence" },
    );
    this.ctx = reconcileContext({
      client: {
        get: (kind, ns, name) => c.get(kind, ns, name),
        setFinalizers: async (kind, obj, f) => (fenced(), c.setFinalizers(kind, obj, f)),
        patchStatus: async (kind, obj, st) => (fenced(), c.patchStatus(kind, obj, st)),
        recordEvent: async (obj, e) => (fenced(), c.recordEvent(obj, e)),
      },
      kms: options.kms,
      timers: this.#timers,
      read: async (kind, ns, name) => this.#informers[kind].get(ns, name),
      ...(c.secrets && { secrets: fencedSecrets(c.secrets, fenced) }),
      ...(options.logger && { logger: options.logger }),
      ...(options.driftCheckMs !== undefined && { driftCheckMs: options.driftCheckMs }),
      ...(options.account !== undefined && { account: options.account }),
    });
    for (const kind of this.#kinds) {
      (this.#informers[kind] as Informer<KubeObject>).on((event, obj, old) =>
        this.#onEvent(kind, event, obj, old),
      );
      this.#watch(kind);
    }
  }

  /** Informer caches are filled (readiness). */
  get synced(): boolean {
    return this.#synced;
  }

  get isLeader(): boolean {
    return this.#o.leaderElection === false
      ? Object.keys(this.#controllers).length > 0
      : (this.#elector?.isLeader ?? false);
  }

  get controllers(): Partial<Record<KindName, Controller>> {
    return this.#controllers;
  }

  informer<K extends KindName>(kind: K): Informer<ObjectsByKind[K]> {
    return this.#informers[kind];
  }

  /** Runs until `signal` aborts ("stopped") or the leader lease is lost ("lost"). */
  async run(signal: AbortSignal): Promise<"stopped" | "lost"> {
    const { logger, metrics } = this.#o;
    await Promise.all(this.#kinds.map((k) => this.#informers[k].start()));
    this.#synced = true;
    logger?.info("caches synced");
    let outcome: "stopped" | "lost";
    if (this.#o.leaderElection === false) {
      this.#fence = signal;
      await this.#lead();
      await new Promise<void>((resolve) =>
        signal.aborted
          ? resolve()
          : signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      outcome = "stopped";
    } else {
      const le = this.#o.leaderElection;
      this.#elector = new LeaderElector({
        client: this.#o.cluster,
        namespace: le.namespace,
        name: le.name ?? "keyhaven-controller",
        identity: le.identity,
        timers: this.#timers,
        ...(le.leaseDurationMs !== undefined && { leaseDurationMs: le.leaseDurationMs }),
        ...(le.renewDeadlineMs !== undefined && { renewDeadlineMs: le.renewDeadlineMs }),
        ...(le.retryPeriodMs !== undefined && { retryPeriodMs: le.retryPeriodMs }),
        ...(logger && { logger }),
      });
      let stopping: Promise<void> = Promise.resolve();
      outcome = await this.#elector.run(signal, (leading) => {
        this.#fence = leading;
        metrics?.leader.set(1);
        void this.#lead();
        leading.addEventListener(
          "abort",
          () => {
            metrics?.leader.set(0);
            stopping = this.#stopControllers();
          },
          { once: true },
        );
      });
      await stopping;
    }
    await this.#stopControllers();
    await Promise.all(this.#kinds.map((k) => this.#informers[k].stop()));
    return outcome;
  }

  async #lead(): Promise<void> {
    const { metrics, logger, workers } = this.#o;
    for (const kind of this.#kinds) {
      const reconcile = RECONCILERS[kind].make(this.ctx);
      const around = this.#o.around;
      const controller = new Controller({
        name: kind.toLowerCase(),
        reconcile: around
          ? (key, signal) => around(kind, key, () => reconcile(key, signal))
          : reconcile,
        timers: this.#timers,
        workers: workers ?? 4,
        ...(metrics && { metrics }),
        ...(logger && { logger }),
      });
      this.#controllers[kind] = controller;
      controller.start();
      for (const obj of this.#informers[kind].list()) controller.queue.add(keyOf(obj));
    }
  }

  async #stopControllers(): Promise<void> {
    const controllers = Object.values(this.#controllers);
    this.#controllers = {};
    await Promise.all(controllers.map((c) => c.stop()));
  }

  #onEvent(kind: KindName, event: InformerEvent, obj: KubeObject, old?: KubeObject): void {
    const controller = this.#controllers[kind];
    if (controller && (event !== "update" || needsReconcile(obj, old)))
      controller.queue.add(keyOf(obj));
  }

  /**
   * For each of `kind`'s watches: keeps an index of references current from `kind`'s
   * informer, and on a change of a referred-to object wakes the objects the index
   * lists for it (and only those).
   */
  #watch<K extends KindName>(kind: K): void {
    for (const watch of RECONCILERS[kind].watches) {
      const index = new RefIndex();
      (this.#informers[kind] as Informer<KubeObject>).on((event, obj) => {
        if (event === "delete") index.delete(keyOf(obj));
        else index.set(keyOf(obj), watch.indexBy(obj as ObjectsByKind[K]));
      });
      (this.#informers[watch.source] as Informer<KubeObject>).on((event, obj, old) => {
        const controller = this.#controllers[kind];
        if (!controller || (event === "update" && !watch.changed(obj as never, old as never)))
          return;
        for (const key of index.get(keyOf(obj))) controller.queue.add(key);
      });
    }
  }
}
