/**
 * Waiting for asynchronous outcomes without fixed sleeps: `eventually` re-checks a
 * condition as I/O completes; `driveUntil` also moves a ManualClock forward a step
 * at a time, so timers (backoff, lease renewals, requeues) fire in fake time.
 */
import type { ManualClock } from "../support/manualClock.js";

const tick = (ms = 5) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `intervalMs` spaces the checks out (polling a real API server every 5 ms is wasteful). */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  limitMs = 15_000,
  /** Between checks; checks that call the real API server poll less often. */
  intervalMs = 5,
): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(intervalMs);
  }
}

export async function driveUntil<T>(
  clock: ManualClock,
  stepMs: number,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  limitMs = 20_000,
): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    clock.advance(stepMs);
    await tick();
  }
}
