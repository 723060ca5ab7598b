/**
 * A log destination that hands each line to the kernel (write(2)) before `write()`
 * returns: a line the caller has seen written survives `kill -9` of this process
 * (it is in the page cache or the pipe; no fsync, so not a power cut).
 *
 * Nothing is buffered in the process, so nothing grows when the reader falls behind:
 * a full non-blocking pipe (EAGAIN) is retried for up to `maxWaitMs`, during which
 * the process waits (backpressure), then the write fails. In `strict` mode a failed
 * write throws AuditUnavailableError, so the caller can refuse the request it was
 * recording; otherwise the line is dropped (ordinary logs must never fail a request).
 */
import { closeSync, constants, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export class AuditUnavailableError extends Error {
  override name = "AuditUnavailableError";
}

export interface SyncDestinationOptions {
  /** Throw AuditUnavailableError when a line cannot be written (audit); drop it otherwise. */
  readonly strict: boolean;
  /** How long a full pipe may hold one line before the write fails. */
  readonly maxWaitMs?: number;
}

export const DEFAULT_MAX_WAIT_MS = 250;

const pause = new Int32Array(new SharedArrayBuffer(4));

export class SyncDestination {
  readonly #fd: number;
  readonly #ownsFd: boolean;
  readonly #strict: boolean;
  readonly #maxWaitMs: number;
  #cut = false;
  #failures = 0;

  /** Lines that could not be written since start (the audit-failure metric). */
  get writeFailures(): number {
    return this.#failures;
  }

  /**
   * `dest`: a file descriptor, or a path opened for appending — created 0600 (its
   * folder 0700) whatever the umask, and non-blocking so that a FIFO that stops
   * being read fails the write instead of hanging the process.
   */
  constructor(dest: string | number, options: SyncDestinationOptions) {
    this.#strict = options.strict;
    this.#maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    if (typeof dest === "number") {
      this.#fd = dest;
      this.#ownsFd = false;
      return;
    }
    mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
    this.#fd = openSync(
      dest,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK,
      0o600,
    );
    this.#ownsFd = true;
  }

  write(line: string): void {
    try {
      // A line cut short by an earlier failure is ended first, so the next one parses.
      this.#writeAll(Buffer.from(this.#cut ? `\n${line}` : line));
      this.#cut = false;
    } catch (err) {
      this.#failures++;
      if (this.#strict)
        throw new AuditUnavailableError(
          `the audit log cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        );
    }
  }

  #writeAll(bytes: Buffer): void {
    let at = 0;
    let deadline: number | undefined;
    while (at < bytes.length) {
      try {
        at += writeSync(this.#fd, bytes, at);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") {
          this.#cut ||= at > 0;
          throw err;
        }
        const now = performance.now();
        deadline ??= now + this.#maxWaitMs;
        if (now >= deadline) {
          this.#cut ||= at > 0;
          throw err;
        }
        Atomics.wait(pause, 0, 0, 2);
      }
    }
  }

  close(): void {
    if (this.#ownsFd) closeSync(this.#fd);
  }
}
