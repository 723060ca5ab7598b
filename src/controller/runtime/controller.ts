/**
 * The reconcile driver (controller-runtime's shape). Workers take keys from the
 * queue; each outcome is one of four:
 *   error (retryable) ....... rate-limited retry
 *   TerminalError ........... forget; nothing to retry until the object changes
 *   { requeueAfter > 0 } .... forget the backoff, add again after the delay
 *   {} ...................... forget
 * A reconcile gets an AbortSignal that fires when the controller stops (for example
 * when the leader Lease is lost), so no work continues after leadership ends.
 */
import type { Logger } from "pino";
import type { ControllerMetrics } from "./metrics.js";
import type { Clock } from "../../time.js";
import { WorkQueue, type RateLimiter } from "./workQueue.js";

export interface Result {
  /** Reconcile again after this many milliseconds (a timer: rotation, deletion date, drift check). */
  readonly requeueAfter?: number;
}

export type ReconcileFn = (key: string, signal: AbortSignal) => Promise<Result>;

/** An error retrying will not fix: the object must change first. */
export class TerminalError extends Error {
  override name = "TerminalError";
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ControllerOptions {
  readonly name: string;
  readonly reconcile: ReconcileFn;
  readonly timers: Clock;
  readonly workers?: number;
  readonly metrics?: ControllerMetrics;
  readonly logger?: Logger;
  readonly rateLimiter?: RateLimiter;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #options: ControllerOptions;
  readonly #abort = new AbortController();
  #running: Promise<void>[] = [];
  #inFlight = 0;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#options = options;
    const depth = options.metrics?.depth.labels({ controller: options.name });
    this.queue = new WorkQueue({
      timers: options.timers,
      ...(options.rateLimiter && { rateLimiter: options.rateLimiter }),
      onDepth: (d) => depth?.set(d),
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  start(): void {
    const workers = this.#options.workers ?? 4;
    for (let i = 0; i < workers; i++) this.#running.push(this.#worker());
  }

  /** Stops taking work, aborts reconciles in flight, and waits for the workers to end. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error(`controller ${this.name} stopped`));
    this.queue.shutDown();
    await Promise.all(this.#running);
  }

  async #worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.#inFlight++;
      try {
        await this.#process(key);
      } finally {
        this.#inFlight--;
        this.queue.done(key);
      }
    }
  }

  async #process(key: string): Promise<void> {
    const { metrics, logger, name } = this.#options;
    const signal = this.#abort.signal;
    const end = metrics?.duration.startTimer({ controller: name });
    let outcome: string;
    try {
      const result = await this.#options.reconcile(key, signal);
      if (signal.aborted) return;
      if (result.requeueAfter !== undefined && result.requeueAfter > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, result.requeueAfter);
        outcome = "requeue_after";
      } else {
        this.queue.forget(key);
        outcome = "success";
      }
    } catch (err) {
      if (signal.aborted) return;
      const reason = err instanceof TerminalError ? err.reason : errorName(err);
      metrics?.errors.inc({ controller: name, reason });
      if (err instanceof TerminalError) {
        this.queue.forget(key);
        outcome = "terminal";
        logger?.warn(
          { controller: name, key, reason, err: err.message },
          "reconcile failed; waiting for a change to the object",
        );
      } else {
        this.queue.addRateLimited(key);
        outcome = "error";
        logger?.warn(
          {
            controller: name,
            key,
            reason,
            retries: this.queue.retries(key),
            err: err instanceof Error ? err.message : String(err),
          },
          "reconcile failed; will retry",
        );
      }
    } finally {
      end?.();
    }
    metrics?.reconciles.inc({ controller: name, result: outcome });
  }
}

export function errorName(err: unknown): string {
  if (err instanceof Error) return (err as { reason?: string }).reason ?? err.name;
  return "Error";
}
