/**
 * The audit lines of one event-loop turn, written together: each request adds its line
 * and its answer; in the turn's check phase (`setImmediate`, after the poll phase has run
 * every request whose data arrived in this turn) the lines go to the audit destination in
 * one write — one write(2) for a file or a pipe — and only then are the answers sent, each
 * told whether its line was written. So every answer still follows its own audit line, at
 * the cost of one system call per turn instead of one per request (a write(2) costs
 * several microseconds on a VM; under load a turn carries a few dozen requests).
 */
export interface AuditBatchTarget {
  /** Writes whole lines in one call; throws when they could not be written. */
  write(lines: string): void;
  /** The outcome of each write (`failed`, with what it threw), before the answers run. */
  written(failed: boolean, error?: unknown): void;
  /** An answer threw (a bug): logged, and the other answers still run. */
  answerFailed(error: unknown): void;
}

export class AuditBatch {
  readonly #target: AuditBatchTarget;
  #lines = "";
  #answers: Array<(written: boolean) => void> = [];
  #scheduled = false;

  constructor(target: AuditBatchTarget) {
    this.#target = target;
  }

  /** Queues `line` ("" for none) and `answer`, which runs once the line is written or has failed. */
  add(line: string, answer: (written: boolean) => void): void {
    this.#lines += line;
    this.#answers.push(answer);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is queued and answers; also run at once when the server stops. */
  flush(): void {
    const lines = this.#lines;
    const answers = this.#answers;
    this.#lines = "";
    this.#answers = [];
    this.#scheduled = false;
    let failed = false;
    try {
      this.#target.write(lines);
      this.#target.written(false);
    } catch (err) {
      failed = true;
      this.#target.written(true, err);
    }
    for (const answer of answers) {
      try {
        answer(!failed);
      } catch (err) {
        this.#target.answerFailed(err);
      }
    }
  }
}
