/**
 * A work queue with client-go's guarantees: a key waiting in the queue is there
 * once however often it is added (de-duplication); a key being processed is not
 * handed out again until `done` (one reconcile per object at a time), and if it
 * was added meanwhile it goes back in the queue then; `addAfter` delays a key on
 * the injected timers (the earliest pending delay wins); `addRateLimited` delays it
 * by a per-key exponential backoff that `forget` resets.
 */
import type { Clock } from "../../time.js";

export interface RateLimiter {
  when(key: string): number;
  forget(key: string): void;
  retries(key: string): number;
}

/** Per-key exponential backoff: base·2^n, capped. */
export class ExponentialRateLimiter implements RateLimiter {
  readonly #failures = new Map<string, number>();
  constructor(
    readonly baseMs = 200,
    readonly maxMs = 5 * 60_000,
  ) {}
  when(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  forget(key: string): void {
    this.#failures.delete(key);
  }
  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

export class WorkQueue {
  readonly #timers: Clock;
  readonly #limiter: RateLimiter;
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  /** Delayed keys: when each is due and the timer that will add it. */
  readonly #waiting = new Map<string, { at: number; cancel: () => void }>();
  #waiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;
  readonly #onDepth: (depth: number) => void;

  constructor(options: {
    timers: Clock;
    rateLimiter?: RateLimiter;
    onDepth?: (depth: number) => void;
  }) {
    this.#timers = options.timers;
    this.#limiter = options.rateLimiter ?? new ExponentialRateLimiter();
    this.#onDepth = options.onDepth ?? (() => {});
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
      this.#onDepth(this.#queue.length);
    }
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.#timers.now().getTime() + delayMs;
    const existing = this.#waiting.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = this.#timers.setTimer(delayMs, () => {
      this.#waiting.delete(key);
      this.add(key);
    });
    this.#waiting.set(key, { at, cancel });
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.#limiter.when(key));
  }

  forget(key: string): void {
    this.#limiter.forget(key);
  }

  retries(key: string): number {
    return this.#limiter.retries(key);
  }

  /** The next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#onDepth(this.#queue.length);
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  get length(): number {
    return this.#queue.length;
  }

  get processing(): number {
    return this.#processing.size;
  }

  /** Keys with a pending delayed add, and when they fall due (epoch ms). */
  delayed(): ReadonlyMap<string, number> {
    return new Map([...this.#waiting].map(([k, v]) => [k, v.at]));
  }

  shutDown(): void {
    this.#shuttingDown = true;
    for (const w of this.#waiting.values()) w.cancel();
    this.#waiting.clear();
    this.#queue.length = 0;
    this.#dirty.clear();
    for (const w of this.#waiters) w(undefined);
    this.#waiters = [];
    this.#onDepth(0);
  }
}
