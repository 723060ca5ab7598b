/**
 * Time as a dependency, in one shape for the whole program: read the time with `now()`,
 * wait with a timer or `sleep`. Production passes `systemClock`; tests pass the one fake,
 * test/support/manualClock.ts, whose `advance` fires due timers in order. Nothing
 * sleeps on the wall clock directly.
 */
import { setTimeout as delay } from "node:timers/promises";

export interface Clock {
  now(): Date;
  /** Calls fn after delayMs; returns a function that cancels it. */
  setTimer(delayMs: number, fn: () => void): () => void;
  /**
   * Resolves after ms, or rejects with the signal's reason once it aborts. Unlike a
   * timer it keeps the process alive: a program waiting on it has nothing else to do.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** setTimeout's delay is a signed 32-bit number of milliseconds. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(delayMs, fn) {
    const t = setTimeout(fn, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    // A timer never keeps the process alive by itself: servers and sockets do.
    t.unref();
    return () => clearTimeout(t);
  },
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
};
