import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../test/support/manualClock.js";
import { pino } from "pino";
import {
  bufferedDestination,
  createLogger,
  lineFormatter,
  REDACTED_FIELDS,
  type Logger,
} from "./logger.js";

/** A line formatted and written at once, as the key service does for each audit line. */
function lineWriter(logger: Logger): (record: object, message: string) => void {
  const lines = lineFormatter(logger);
  return (record, message) => lines.write(lines.format(record, message));
}

/** A logger writing into memory; returns the logger and the parsed lines. */
function memoryLogger() {
  const lines: string[] = [];
  const logger = createLogger("info", { write: (line: string) => void lines.push(line) });
  return {
    logger,
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const SECRET = "s3cr3t-value-that-must-not-appear";
const topLevel = REDACTED_FIELDS.filter((p) => !p.includes("."));
const nested = REDACTED_FIELDS.filter((p) => p.startsWith("*.")).map((p) => p.slice(2));

describe("createLogger redaction", () => {
  it("censors every listed top-level field and the same names one level down", () => {
    const { logger, lines, parsed } = memoryLogger();
    for (const name of topLevel) logger.info({ [name]: SECRET, keep: "visible" }, "top");
    for (const name of nested) logger.info({ input: { [name]: SECRET, KeyId: "k" } }, "nested");
    logger.info({ headers: { authorization: SECRET, host: "h" } }, "headers");

    expect(lines.join("")).not.toContain(SECRET);
    const records = parsed();
    expect(records[0]).toMatchObject({ [topLevel[0]!]: "[redacted]", keep: "visible" });
    expect(records[topLevel.length]).toMatchObject({
      input: { [nested[0]!]: "[redacted]", KeyId: "k" },
    });
    expect(records.at(-1)).toMatchObject({ headers: { authorization: "[redacted]", host: "h" } });
  });

  it("censors child-logger bindings too", () => {
    const { logger, lines } = memoryLogger();
    logger.child({ request: { Plaintext: SECRET }, secretAccessKey: SECRET }).info("child");
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SECRET);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      request: { Plaintext: "[redacted]" },
      secretAccessKey: "[redacted]",
    });
  });

  it("leaves the caller's objects untouched", () => {
    const { logger } = memoryLogger();
    const input = { Plaintext: SECRET, KeyId: "k" };
    const record = { input, plaintext: SECRET };
    logger.info(record, "m");
    expect(record).toEqual({ input: { Plaintext: SECRET, KeyId: "k" }, plaintext: SECRET });
    expect(record.input).toBe(input);
  });

  it("keeps an audit line's fields as given", () => {
    const { logger, parsed } = memoryLogger();
    const line = {
      requestId: "r",
      operation: "Encrypt",
      principal: "arn:aws:iam::000000000000:user/a",
      resources: ["arn:aws:kms:us-east-1:000000000000:key/k"],
      outcome: "success",
      durationMs: 0.5,
    };
    logger.info(line, "kms request");
    expect(parsed()[0]).toMatchObject({ ...line, msg: "kms request", service: "keyhaven" });
  });

  it("never writes a secret placed under a sensitive name at the top or one level down", () => {
    const names = fc.constantFrom(...nested);
    const record = fc.oneof(
      fc
        .record({ name: names, other: fc.dictionary(fc.string(), fc.string()) })
        .map(({ name, other }) => ({ ...other, [name]: SECRET })),
      fc
        .record({ field: fc.string({ minLength: 1 }), name: names, other: fc.string() })
        .map(({ field, name, other }) => ({ [field]: { other, [name]: SECRET } })),
    );
    fc.assert(
      fc.property(record, (r) => {
        const { logger, lines } = memoryLogger();
        logger.info(r, "m");
        expect(lines.join("")).not.toContain(SECRET);
      }),
    );
  });
});

describe("lineFormatter", () => {
  const withoutTime = (line: string) => {
    const { time, ...rest } = JSON.parse(line) as Record<string, unknown>;
    expect(typeof time).toBe("string");
    return rest;
  };

  it("writes the line logger.info writes, redaction and child bindings included", () => {
    const { logger, lines } = memoryLogger();
    const audit = logger.child({ audit: true });
    const write = lineWriter(audit);
    const records: object[] = [
      {
        requestId: "r",
        resources: ["a"],
        nested: { deep: { x: 1 } },
        n: 0.5,
        ok: true,
        gone: undefined,
      },
      ...topLevel.map((name) => ({ [name]: SECRET, keep: "visible" })),
      ...nested.map((name) => ({ input: { [name]: SECRET, KeyId: "k" } })),
      { headers: { authorization: SECRET, host: "h" } },
      {},
    ];
    for (const record of records) {
      audit.info(record, "kms request");
      write(record, "kms request");
    }
    expect(lines).toHaveLength(records.length * 2);
    expect(lines.join("")).not.toContain(SECRET);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i + 1]!.endsWith("}\n")).toBe(true);
      expect(withoutTime(lines[i + 1]!)).toEqual(withoutTime(lines[i]!));
      expect(Object.keys(JSON.parse(lines[i + 1]!) as object)).toEqual(
        Object.keys(JSON.parse(lines[i]!) as object),
      );
    }
  });

  it("never writes a secret placed under a sensitive name at the top or one level down", () => {
    const names = fc.constantFrom(...nested, ...topLevel);
    const record = fc.oneof(
      fc
        .record({ name: names, other: fc.dictionary(fc.string(), fc.string()) })
        .map(({ name, other }) => ({ ...other, [name]: SECRET })),
      fc
        .record({
          field: fc.string({ minLength: 1 }),
          name: fc.constantFrom(...nested),
          other: fc.string(),
        })
        .map(({ field, name, other }) => ({ [field]: { other, [name]: SECRET } })),
    );
    fc.assert(
      fc.property(record, (r) => {
        const { logger, lines } = memoryLogger();
        lineWriter(logger)(r, "m");
        expect(lines.join("")).not.toContain(SECRET);
      }),
    );
  });

  it("falls back to info() for a logger createLogger did not make, and honours the level", () => {
    const lines: string[] = [];
    const other = pino({ level: "info" }, { write: (l: string) => void lines.push(l) });
    lineWriter(other)({ a: 1 }, "m");
    expect(JSON.parse(lines[0]!)).toMatchObject({ a: 1, msg: "m", level: 30 });
    const { logger, lines: quiet } = memoryLogger();
    logger.level = "warn";
    lineWriter(logger)({ a: 1 }, "m");
    expect(quiet).toHaveLength(0);
  });
});

describe("bufferedDestination", () => {
  const dir = mkdtempSync(join(tmpdir(), "keyhaven-logger-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("holds a few lines back and writes them when the flush interval passes", async () => {
    const clock = new ManualClock();
    const path = join(dir, "audit.log");
    const destination = bufferedDestination(path, 1000, clock);
    await once(destination, "ready");
    const logger = createLogger("info", destination);
    logger.info({ requestId: "r1", outcome: "success" }, "kms request");
    expect(readFileSync(path, "utf8")).toBe("");

    const written = once(destination, "write");
    clock.advance(1000);
    await written;
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ requestId: "r1", msg: "kms request" });
  });

  it("writes without waiting once 4 KiB are buffered", async () => {
    const path = join(dir, "busy.log");
    const destination = bufferedDestination(path, 60_000);
    await once(destination, "ready");
    const logger = createLogger("info", destination);
    const written = once(destination, "write");
    for (let i = 0; i < 40; i++) logger.info({ requestId: `r${i}`, pad: "x".repeat(100) }, "m");
    await written;
    expect(readFileSync(path, "utf8").length).toBeGreaterThanOrEqual(4096);
  });
});
