import { setImmediate as turn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { AuditBatch } from "./auditBatch.js";

/** A batch over an in-memory destination that records the order of writes and answers. */
function recorded(fail = () => false) {
  const events: string[] = [];
  const outcomes: Array<[boolean, unknown]> = [];
  const batch = new AuditBatch({
    write(lines) {
      if (fail()) throw new Error("disk full");
      events.push(`write ${JSON.stringify(lines)}`);
    },
    written: (failed, error) => void outcomes.push([failed, error]),
    answerFailed: (error) => events.push(`answer failed: ${(error as Error).message}`),
  });
  const answer = (name: string) => (written: boolean) => void events.push(`${name} ${written}`);
  return { batch, events, outcomes, answer };
}

describe("AuditBatch", () => {
  it("writes the lines of one turn in one write, before any of their answers", async () => {
    const { batch, events, outcomes, answer } = recorded();
    batch.add("a\n", answer("A"));
    batch.add("", answer("B"));
    batch.add("c\n", answer("C"));
    expect(events).toEqual([]);
    await turn();
    expect(events).toEqual(['write "a\\nc\\n"', "A true", "B true", "C true"]);
    expect(outcomes).toEqual([[false, undefined]]);
    batch.add("d\n", answer("D"));
    await turn();
    expect(events.slice(4)).toEqual(['write "d\\n"', "D true"]);
  });

  it("answers every request of a failed write with false, and reports the error once", async () => {
    let failing = true;
    const { batch, events, outcomes, answer } = recorded(() => failing);
    batch.add("a\n", answer("A"));
    batch.add("b\n", answer("B"));
    await turn();
    expect(events).toEqual(["A false", "B false"]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]![0]).toBe(true);
    expect((outcomes[0]![1] as Error).message).toBe("disk full");
    failing = false;
    batch.add("c\n", answer("C"));
    await turn();
    expect(events.slice(2)).toEqual(['write "c\\n"', "C true"]);
  });

  it("runs the other answers when one throws", async () => {
    const { batch, events, answer } = recorded();
    batch.add("a\n", () => {
      throw new Error("socket gone");
    });
    batch.add("b\n", answer("B"));
    await turn();
    expect(events).toEqual(['write "a\\nb\\n"', "answer failed: socket gone", "B true"]);
  });
});
