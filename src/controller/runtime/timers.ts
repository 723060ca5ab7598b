/**
 * Time as a dependency, with timers: production uses the system clock, tests a
 * ManualClock whose `advance` fires due timers in order. Nothing in the controller
 * sleeps; every wait is a timer on one of these.
 */
import type { Clock } from "../../clock.js";

export interface Timers extends Clock {
  /** Calls fn after delayMs; returns a function that cancels it. */
  setTimer(delayMs: number, fn: () => void): () => void;
}

export const systemTimers: Timers = {
  now: () => new Date(),
  setTimer(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref?.();
    return () => clearTimeout(t);
  },
};

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class ManualClock implements Timers {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  constructor(start: Date | string = "2026-01-01T00:00:00Z") {
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

  set(date: Date | string): void {
    const t = new Date(date).getTime();
    if (t > this.#now) this.advance(t - this.#now);
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
