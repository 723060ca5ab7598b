/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 *
 *   try:   no Lease → create it holding it. Held by someone else and renewed within
 *          leaseDuration (as observed on OUR clock: when we last saw the record
 *          change) → not ours. Otherwise (ours, or expired) → update it to us, with
 *          the resourceVersion we read (409 → someone else won).
 *   acquire: try every retryPeriod until it succeeds → onStartedLeading.
 *   renew:   try every retryPeriod; no successful renewal for renewDeadline → the
 *            lease is lost: stop leading at once (renewDeadline < leaseDuration, so
 *            we stop before anyone else may take over).
 *   stop:    release (holder cleared) so a successor need not wait out the lease.
 */
import type { Logger } from "pino";
import {
  isConflict,
  type LeaseClient,
  type LeaseRecord,
  type StoredLease,
} from "../../kube/cluster.js";
import type { Clock } from "../../time.js";

export interface LeaderElectionOptions {
  readonly client: LeaseClient;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly timers: Clock;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly logger?: Logger;
}

/** MicroTime: RFC 3339 with microseconds. */
const microTime = (d: Date) => d.toISOString().replace("Z", "000Z");

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, "logger">> & { logger?: Logger };
  #observed: { record: string; at: number } | undefined;
  #leading = false;

  constructor(options: LeaderElectionOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
    };
    if (this.#o.renewDeadlineMs >= this.#o.leaseDurationMs)
      throw new Error("renewDeadline must be shorter than leaseDuration");
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Runs until `signal` aborts (then releases the lease) or leadership is lost.
   * `lead` is called once leadership is acquired, with a signal that aborts the
   * moment it ends. Resolves "stopped" or "lost".
   */
  async run(
    signal: AbortSignal,
    lead: (leading: AbortSignal) => void,
  ): Promise<"stopped" | "lost"> {
    const o = this.#o;
    while (!signal.aborted && !(await this.#tryAcquireOrRenew()))
      await this.#wait(o.retryPeriodMs, signal);
    if (signal.aborted) return "stopped";
    this.#leading = true;
    o.logger?.info({ lease: `${o.namespace}/${o.name}`, identity: o.identity }, "became leader");
    const leading = new AbortController();
    lead(leading.signal);
    let lastRenew = o.timers.now().getTime();
    for (;;) {
      await this.#wait(o.retryPeriodMs, signal);
      if (signal.aborted) {
        this.#leading = false;
        leading.abort(new Error("stopping"));
        await this.#release();
        return "stopped";
      }
      const renewed = await this.#withDeadline(this.#tryAcquireOrRenew(), o.renewDeadlineMs);
      const now = o.timers.now().getTime();
      if (renewed) lastRenew = now;
      else if (now - lastRenew >= o.renewDeadlineMs) {
        this.#leading = false;
        leading.abort(new Error("leader lease lost"));
        o.logger?.error(
          { lease: `${o.namespace}/${o.name}`, identity: o.identity },
          "leader lease lost; stopping work",
        );
        return "lost";
      }
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const o = this.#o;
    const now = o.timers.now();
    const mine: LeaseRecord = {
      holderIdentity: o.identity,
      leaseDurationSeconds: Math.ceil(o.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let current: StoredLease | undefined;
    try {
      current = await o.client.getLease(o.namespace, o.name);
      if (!current) {
        await o.client.createLease(o.namespace, o.name, mine);
        this.#observe(mine, now);
        return true;
      }
      const record = current.spec;
      this.#observe(record, now);
      const heldByOther =
        record.holderIdentity !== undefined &&
        record.holderIdentity !== "" &&
        record.holderIdentity !== o.identity;
      const duration = (record.leaseDurationSeconds ?? 15) * 1000;
      if (heldByOther && this.#observed!.at + duration > now.getTime()) return false;
      const next: LeaseRecord = {
        ...mine,
        ...(record.holderIdentity === o.identity &&
          record.acquireTime && { acquireTime: record.acquireTime }),
        leaseTransitions:
          (record.leaseTransitions ?? 0) + (record.holderIdentity === o.identity ? 0 : 1),
      };
      await o.client.updateLease(o.namespace, o.name, next, current.resourceVersion);
      this.#observe(next, now);
      return true;
    } catch (err) {
      if (!isConflict(err))
        o.logger?.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "lease request failed",
        );
      return false;
    }
  }

  #observe(record: LeaseRecord, now: Date): void {
    const text = JSON.stringify(record);
    if (this.#observed?.record !== text) this.#observed = { record: text, at: now.getTime() };
  }

  async #release(): Promise<void> {
    const o = this.#o;
    try {
      const current = await o.client.getLease(o.namespace, o.name);
      if (current?.spec.holderIdentity !== o.identity) return;
      const now = microTime(o.timers.now());
      await o.client.updateLease(
        o.namespace,
        o.name,
        { ...current.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now },
        current.resourceVersion,
      );
    } catch {
      // The lease expires on its own.
    }
  }

  #wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const cancel = this.#o.timers.setTimer(ms, done);
      function done() {
        cancel();
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #withDeadline(p: Promise<boolean>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const cancel = this.#o.timers.setTimer(ms, () => resolve(false));
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        () => {
          cancel();
          resolve(false);
        },
      );
    });
  }
}
