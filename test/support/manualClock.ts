/**
 * The one fake clock of the test suite: time stands still until a test moves it, and
 * `advance` fires every timer that falls due, earliest first, at its due time.
 */
import type { Clock } from "../../src/time.js";

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  constructor(start: Date | string | number = "2026-01-01T00:00:00Z") {
    this.#now = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  setTimer(delayMs: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        cancel();
        reject(signal!.reason as Error);
      };
      const cancel = this.setTimer(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Moves time forward, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }

  /**
   * Sets the time to date: forward fires what falls due on the way; back (a clock
   * stepped back, as NTP may) fires nothing, and pending timers keep their due times.
   */
  set(date: Date | string | number): void {
    const t = new Date(date).getTime();
    if (t > this.#now) this.advance(t - this.#now);
    else this.#now = t;
  }

  /** Moves time to the earliest pending timer and fires it (and any due with it). */
  advanceToNextTimer(): void {
    const next = this.pendingDelays()[0];
    if (next === undefined) throw new Error("no timer armed");
    this.advance(next);
  }

  /** Pending timers (for tests asserting that nothing is scheduled). */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Delays of pending timers from now, sorted. */
  pendingDelays(): number[] {
    return this.#timers.map((t) => t.at - this.#now).sort((a, b) => a - b);
  }
}

/**
 * Settles `work`, moving `clock` to each timer it waits on once it waits on one (its
 * I/O included: the check repeats as real events complete). `onTimer` sees each delay
 * first and may act, e.g. start a server or abort; a timer it cancels is not fired.
 */
export async function driveTimers<T>(
  clock: ManualClock,
  work: Promise<T>,
  onTimer?: (delayMs: number) => void | Promise<void>,
  limitMs = 20_000,
): Promise<T> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  const end = Date.now() + limitMs;
  for (;;) {
    while (!settled && clock.pendingTimers === 0) {
      if (Date.now() > end) throw new Error("timed out: the work neither settled nor waited");
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
    }
    if (settled) return work;
    await onTimer?.(clock.pendingDelays()[0]!);
    if (clock.pendingTimers > 0) clock.advanceToNextTimer();
  }
}
