/**
 * Structured logs with pino. Secrets never reach a log line: request bodies are
 * never logged, and `redact` removes the fields that could carry them should one
 * ever be passed by mistake.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import { systemClock, type Clock } from "../time.js";

export const REDACTED_FIELDS = [
  "plaintext",
  "Plaintext",
  "secretAccessKey",
  "SecretAccessKey",
  "sessionToken",
  "SessionToken",
  "grantToken",
  "GrantToken",
  "authorization",
  "headers.authorization",
  "material",
  "privateKey",
  "PrivateKeyPlaintext",
  "*.plaintext",
  "*.Plaintext",
  "*.secretAccessKey",
  "*.SecretAccessKey",
  "*.sessionToken",
  "*.SessionToken",
  "*.grantToken",
  "*.GrantToken",
  "*.authorization",
  "*.material",
  "*.privateKey",
  "*.PrivateKeyPlaintext",
];

export type { Logger };

const CENSOR = "[redacted]";

// pino runs a "*.name" path as a redactor over every top-level value of every line
// (~20 µs per audit line); top-level paths cost nothing unless the field is present.
// So pino redacts the literal paths, and the one-level wildcards are done here.
const LITERAL_PATHS = REDACTED_FIELDS.filter((path) => !path.startsWith("*."));
const NESTED_NAMES = REDACTED_FIELDS.filter((path) => path.startsWith("*.")).map((path) =>
  path.slice(2),
);

/**
 * Censors `name` in every object-valued top-level field that has it (what pino's
 * `*.name` does), copying instead of mutating the caller's objects.
 */
export function redactNested<T extends object>(record: T): T {
  let out: Record<string, unknown> | undefined;
  for (const key in record) {
    const value: unknown = record[key];
    if (typeof value !== "object" || value === null) continue;
    let copy: object | undefined;
    for (const name of NESTED_NAMES) {
      if (!Object.hasOwn(value, name)) continue;
      copy ??= Object.create(
        Object.getPrototypeOf(value) as object | null,
        Object.getOwnPropertyDescriptors(value),
      ) as object;
      Object.defineProperty(copy, name, { value: CENSOR, enumerable: true, writable: true });
    }
    if (copy) {
      out ??= { ...(record as Record<string, unknown>) };
      out[key] = copy;
    }
  }
  return (out ?? record) as T;
}

/**
 * An asynchronous destination (a file path or a file descriptor) that writes in
 * blocks of at least 4 KiB, and at least every `flushMs`: a busy server makes one
 * write per dozen lines instead of one per line (each a thread-pool round trip;
 * ~10–15 µs of CPU per audit line), and a quiet one still shows every line within
 * `flushMs`. Lines still buffered are written on exit and by `logger.flush()`.
 */
export function bufferedDestination(
  dest: string | number,
  flushMs = 1000,
  clock: Clock = systemClock,
): ReturnType<typeof pino.destination> {
  const stream = pino.destination({
    dest,
    sync: false,
    minLength: 4096,
    ...(typeof dest === "string" && { append: true, mkdir: true }),
  });
  let ended = false;
  let cancel: () => void;
  const tick = () => {
    if (ended) return;
    try {
      stream.flush();
    } catch {
      // Destroyed between the end and the close event: nothing left to flush.
    }
    cancel = clock.setTimer(flushMs, tick);
  };
  cancel = clock.setTimer(flushMs, tick);
  const stop = () => {
    ended = true;
    cancel();
  };
  stream.once("finish", stop);
  stream.once("close", stop);
  return stream;
}

/** The time now as pino's isoTime writes it; lines of the same millisecond share one. */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastTime.at) {
    lastTime.at = now;
    lastTime.text = new Date(now).toISOString();
  }
  return lastTime.text;
}
const lastTime = { at: NaN, text: "" };

/** Loggers made by createLogger (and their children): the ones `lineFormatter` knows the format of. */
const ours = new WeakSet<Logger>();

/** `redactNested`, then the literal paths pino's `redact` censors (`name` and `parent.name`). */
function redactRecord<T extends object>(record: T): T {
  let out = redactNested(record) as Record<string, unknown>;
  for (const path of LITERAL_PATHS) {
    const dot = path.indexOf(".");
    if (dot < 0) {
      if (Object.hasOwn(out, path)) out = Object.assign({}, out, { [path]: CENSOR });
      continue;
    }
    const parent = path.slice(0, dot);
    const inner: unknown = out[parent];
    const name = path.slice(dot + 1);
    if (typeof inner === "object" && inner !== null && Object.hasOwn(inner, name))
      out = Object.assign({}, out, { [parent]: Object.assign({}, inner, { [name]: CENSOR }) });
  }
  return out as T;
}

/**
 * Info-level lines for `logger`, made apart from their writing so that a caller can write
 * several in one go. `format` serialises `record` with one `JSON.stringify` into the same
 * line pino would write (level, time, bindings, the record's fields, msg; the same
 * redaction) for about a third of the CPU time; `write` hands whole lines to the logger's
 * destination in one call (one write(2) for SyncDestination). A logger not made by
 * createLogger is written at once through `logger.info`, and `format` returns "".
 */
export interface LineFormatter {
  /** The finished line ("" when the level is off or the line was written through info()). */
  format(record: object, message: string): string;
  /**
   * The same from a record already serialised: `members` is a JSON object's members without
   * the braces, and holds nothing the redaction censors (the caller's duty: the audit record
   * is built from sanitised members, kms/audit/auditRecord.ts).
   */
  formatJson(members: string, message: string): string;
  /** Writes `lines` (whole lines) to the destination; throws if a strict destination does. */
  write(lines: string): void;
}

export function lineFormatter(logger: Logger): LineFormatter {
  if (!ours.has(logger))
    return {
      format: (record, message) => (logger.info(record, message), ""),
      formatJson: (members, message) => (logger.info(JSON.parse(`{${members}}`), message), ""),
      write: () => {},
    };
  const fields = logger as unknown as Record<symbol, unknown>;
  const stream = fields[pino.symbols.streamSym] as DestinationStream;
  const bindings = fields[pino.symbols.chindingsSym] as string;
  const formatJson = (members: string, message: string): string =>
    logger.isLevelEnabled("info")
      ? `{"level":"info","time":"${isoNow()}"${bindings}${members.length > 0 ? "," : ""}${members},"msg":${JSON.stringify(message)}}\n`
      : "";
  return {
    format: (record, message) =>
      formatJson(JSON.stringify(redactRecord(record)).slice(1, -1), message),
    formatJson,
    write(lines) {
      if (lines.length > 0) stream.write(lines);
    },
  };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { service: "keyhaven" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: LITERAL_PATHS, censor: CENSOR },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: redactNested,
        log: redactNested,
      },
    },
    destination ?? bufferedDestination(1),
  );
  // pino resets the bindings formatter for children, so child bindings are redacted
  // here; children inherit this `child` through their prototype.
  const child = Reflect.get(Object.getPrototypeOf(logger) as object, "child") as (
    this: Logger,
    bindings: object,
    options?: object,
  ) => Logger;
  Object.defineProperty(logger, "child", {
    value: function (this: Logger, bindings: object, options?: object) {
      const made = child.call(this, redactNested(bindings), options);
      // Options may bring serializers or formatters of their own: then lineFormatter uses info().
      if (options === undefined) ours.add(made);
      return made;
    },
  });
  ours.add(logger);
  return logger;
}
