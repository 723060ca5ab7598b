/**
 * The lifecycle loop: the key service's own timer for rotations, deletions and
 * imported-material expiry. Every timer is a date stored with the key; the loop
 * only ever sleeps until the earliest of them:
 *
 *   start()  → check() at once (whatever fell due while the server was down happens now)
 *   check()  → run every due action (actions.ts), then arm a timer for the next due
 *              date from the store (capped at maxSleepMs, so dates written by another
 *              process are seen too)
 *   a write  → the store reports the new due date (watchDueDates); if it is earlier
 *              than the armed one, the timer is re-armed for it
 *
 * Time comes from the service's clock and timers from an injectable Clock, so tests
 * drive the whole thing with fake clocks and fire the timer by hand.
 */
import type { Logger } from "pino";
import { MAX_TIMER_MS, systemClock, type Clock } from "../../time.js";
import type { KeyService } from "../keyService.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { runDueActions, type ActionObserver, type LifecycleReport } from "./actions.js";

export interface LifecycleOptions {
  readonly logger: Logger;
  /** Where one line per lifecycle action goes; `logger` by default. */
  readonly audit?: Logger;
  /** Where the loop arms its timer (the service clock reads the time). */
  readonly timers?: Clock;
  /** Longest sleep between checks, even with nothing due (default one hour). */
  readonly maxSleepMs?: number;
  /** Counts actions and failures (src/kms/metrics/). */
  readonly metrics?: {
    lifecycleAction(action: Parameters<ActionObserver["acted"]>[0]): void;
    lifecycleFailure(): void;
  };
}

export class LifecycleLoop {
  readonly #service: KeyService;
  readonly #logger: Logger;
  readonly #audit: Logger;
  readonly #timers: Clock;
  readonly #maxSleepMs: number;
  readonly #metrics: LifecycleOptions["metrics"];
  /** Cancels the armed timer. */
  #cancel: (() => void) | undefined;
  /** Epoch ms (service clock) the armed timer is for. */
  #armedFor: number | undefined;
  /** The earliest due date the loop knows of (it may wake earlier, for the periodic re-check). */
  #nextDue: number | undefined;
  #running: Promise<LifecycleReport> | undefined;
  #rerun = false;
  #stopped = true;
  #unwatch: (() => void) | undefined;

  constructor(service: KeyService, options: LifecycleOptions) {
    this.#service = service;
    this.#logger = options.logger;
    this.#audit = options.audit ?? options.logger;
    this.#timers = options.timers ?? systemClock;
    this.#maxSleepMs = Math.min(options.maxSleepMs ?? 60 * 60 * 1000, MAX_TIMER_MS);
    this.#metrics = options.metrics;
  }

  /** The service-clock time the loop will next wake at, if armed. */
  get armedFor(): number | undefined {
    return this.#armedFor;
  }

  /** The earliest due date of any key, as of the last check or write. */
  get nextDue(): number | undefined {
    return this.#nextDue;
  }

  /** Runs the due actions now and arms the timer; resolves once that first check is done. */
  async start(): Promise<LifecycleReport> {
    this.#stopped = false;
    this.#unwatch = this.#service.store.watchDueDates((due) => this.#earlierDate(due));
    return this.check();
  }

  /** Performs every action due now, then re-arms. Concurrent calls share one run. */
  check(): Promise<LifecycleReport> {
    if (this.#running) {
      this.#rerun = true;
      return this.#running;
    }
    const run = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#rerun && !this.#stopped) {
        this.#rerun = false;
        void this.check();
      }
    });
    this.#running = run;
    return run;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    this.#disarm();
    await this.#running?.catch(() => undefined);
  }

  async #run(): Promise<LifecycleReport> {
    this.#disarm();
    const now = this.#service.clock.now().getTime();
    let report: LifecycleReport = { rotated: [], expired: [], deleted: [], failed: [] };
    try {
      report = await runDueActions(this.#service, now, {
        acted: (action, key) => {
          this.#metrics?.lifecycleAction(action);
          this.#auditAction(action, key, "success");
        },
        failed: (key, err) => {
          this.#metrics?.lifecycleFailure();
          this.#auditAction("LifecycleAction", key, "error");
          this.#logger.error(
            {
              keyId: key.keyId,
              err: { type: (err as Error)?.name, message: (err as Error)?.message },
            },
            "lifecycle action failed; retrying at the next check",
          );
        },
      });
    } catch (err) {
      this.#logger.error(
        { err: { type: (err as Error)?.name, message: (err as Error)?.message } },
        "lifecycle check failed; retrying at the next check",
      );
    }
    if (!this.#stopped) await this.#arm(report.failed.length > 0);
    return report;
  }

  async #arm(hadFailures: boolean): Promise<void> {
    const now = this.#service.clock.now().getTime();
    let next: number | undefined;
    try {
      next = await this.#service.store.nextDueAt();
    } catch {
      next = undefined;
    }
    // A failed action stays due; back off a minute instead of spinning on it.
    if (next !== undefined && next <= now && hadFailures) next = now + 60_000;
    this.#nextDue = next;
    const wake = Math.min(next ?? Infinity, now + this.#maxSleepMs);
    this.#setTimer(wake, now);
  }

  #earlierDate(due: number): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#rerun = true;
      return;
    }
    if (this.#nextDue === undefined || due < this.#nextDue) this.#nextDue = due;
    if (this.#armedFor !== undefined && due >= this.#armedFor) return;
    this.#setTimer(due, this.#service.clock.now().getTime());
  }

  #setTimer(wake: number, now: number): void {
    this.#disarm();
    this.#armedFor = wake;
    const delay = Math.max(0, Math.min(wake - now, MAX_TIMER_MS));
    this.#cancel = this.#timers.setTimer(delay, () => {
      this.#cancel = undefined;
      this.#armedFor = undefined;
      void this.check();
    });
  }

  #disarm(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#armedFor = undefined;
  }

  #auditAction(action: string, key: KeyRecord, outcome: "success" | "error"): void {
    this.#audit.info(
      {
        operation: `lifecycle:${action}`,
        principal: "keyhaven:lifecycle",
        resources: [key.arn],
        outcome,
      },
      "kms lifecycle action",
    );
  }
}
