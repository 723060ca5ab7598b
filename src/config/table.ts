/**
 * One declarative table per command: each flag's environment variables, default, schema
 * and help. From a table come the parser (flag, else environment, else default), the
 * validation (every error names its flag), the usage text, and the suggestion for a
 * mistyped flag. Adding a flag to a command is adding one entry to its table.
 */
import { parseArgs } from "node:util";
import type { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface Flag<T> {
  /** Variables read when the flag is absent, in order; an empty one counts as unset. */
  readonly env?: readonly string[];
  /** The value when neither the flag nor a variable is given (parsed by `schema` too). */
  readonly default?: string;
  /** Placeholder in the usage (HOST:PORT); without one the flag is a switch ("true" when given). */
  readonly arg?: string;
  /** Parses the text (undefined when absent without default); its message follows `--flag: `. */
  readonly schema: z.ZodType<T>;
  readonly help: string;
  /** The flag may be given several times; its values reach `schema` joined by commas. */
  readonly repeatable?: boolean;
}

/** Flag name (without `--`) → entry. */
export type FlagTable = Readonly<Record<string, Flag<unknown>>>;

/** The parsed value of every flag of a table. */
export type Values<T extends FlagTable> = {
  readonly [K in keyof T]: T[K] extends Flag<infer V> ? V : never;
};

/** Infers a flag's value type from its schema. */
export const flag = <T>(entry: Flag<T>): Flag<T> => entry;

/**
 * Applies defaults and schemas to raw texts: `get(name)` is the flag's text from the
 * command line or the environment, undefined when neither has it.
 */
export function parseValues<T extends FlagTable>(
  table: T,
  get: (name: string) => string | undefined,
): Values<T> {
  const values: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(table)) {
    const parsed = entry.schema.safeParse(get(name) ?? entry.default);
    if (!parsed.success) throw new ConfigError(`--${name}: ${parsed.error.issues[0]!.message}`);
    values[name] = parsed.data;
  }
  return values as Values<T>;
}

/** Reads `argv` and `env` for a command's table; flags win over environment variables. */
export function readFlags<T extends FlagTable>(
  command: string,
  table: T,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Values<T> {
  const given = parseCommandLine(command, table, argv);
  return parseValues(table, (name) => {
    const value = given[name];
    if (Array.isArray(value)) return value.join(",");
    if (value !== undefined) return typeof value === "string" ? value : "true";
    for (const variable of table[name]?.env ?? []) if (env[variable]) return env[variable];
    return undefined;
  });
}

/**
 * The flags given on the command line. An unknown flag names the closest valid one;
 * every parse error points at the command's --help.
 */
function parseCommandLine(
  command: string,
  table: FlagTable,
  argv: readonly string[],
): Record<string, string | boolean | (string | boolean)[] | undefined> {
  const names = Object.keys(table);
  try {
    return parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        names.map((name) => [
          name,
          {
            type: table[name]!.arg === undefined ? ("boolean" as const) : ("string" as const),
            ...(table[name]!.repeatable === true && { multiple: true }),
          },
        ]),
      ),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    const help = `(keyhaven ${command} --help lists the flags)`;
    const unknown = /^Unknown option '(-{1,2})([^'=]+)'/.exec((err as Error).message);
    if (unknown) {
      const guess = closest(unknown[2]!, names);
      throw new ConfigError(
        `Unknown option '${unknown[1]}${unknown[2]}' for keyhaven ${command}${guess ? `; did you mean --${guess}?` : ""} ${help}`,
      );
    }
    throw new ConfigError(`${(err as Error).message.split(". ")[0]} ${help}`);
  }
}

/** A subcommand: its --help text and its parser. */
export interface Command<C> {
  readonly name: string;
  /** One line in `keyhaven --help`. */
  readonly summary: string;
  /** `keyhaven <command> --help`. */
  readonly usage: string;
  load(argv: readonly string[], env: NodeJS.ProcessEnv): C;
}

/**
 * A command from its table: `build` turns the flags' values (and, for the standard
 * AWS_* variables, the environment) into the command's frozen configuration, checking
 * what concerns several flags at once.
 */
export function command<T extends FlagTable, C>(spec: {
  readonly name: string;
  readonly summary: string;
  /** After `Usage: keyhaven NAME `; `[flags]` by default. */
  readonly synopsis?: string;
  readonly description: string;
  readonly flags: T;
  /** Headed groups of the flags for the usage; one group of all by default. */
  readonly sections?: readonly (readonly [heading: string, flags: FlagTable])[];
  readonly build: (values: Values<T>, env: NodeJS.ProcessEnv) => C;
}): Command<C> {
  const sections = spec.sections ?? [["Flags (environment variables in brackets):", spec.flags]];
  return {
    name: spec.name,
    summary: spec.summary,
    usage: [
      `Usage: keyhaven ${spec.name} ${spec.synopsis ?? "[flags]"}\n\n${spec.description}\n`,
      ...sections.map(([heading, flags]) => `${heading}\n${flagUsage(flags)}`),
    ].join("\n"),
    load: (argv, env) =>
      Object.freeze(spec.build(readFlags(spec.name, spec.flags, argv, env), env)),
  };
}

/** The usage lines of a table: flag and placeholder, help, [variables], (default). */
export function flagUsage(table: FlagTable): string {
  return Object.entries(table)
    .map(([name, entry]) =>
      columns(`  --${name}${entry.arg === undefined ? "" : ` ${entry.arg}`}`, 32, [
        entry.help,
        ...(entry.env?.length ? [`[${entry.env.join(", ")}]`] : []),
        ...(entry.default !== undefined ? [`(default ${entry.default})`] : []),
      ]),
    )
    .join("");
}

/**
 * `left`, then `texts` wrapped at 100 columns from column `at` (on the next line when
 * `left` reaches it).
 */
export function columns(left: string, at: number, texts: readonly string[]): string {
  const indent = " ".repeat(at);
  const lines: string[] = [];
  let line = left.padEnd(at);
  if (left.length >= at - 1) {
    lines.push(left);
    line = indent;
  }
  for (const word of texts.join(" ").split(" ")) {
    // Past `at` the line holds a word already.
    if (line.length > at && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = indent;
    }
    line += line.length > at ? ` ${word}` : word;
  }
  lines.push(line);
  return `${lines.join("\n")}\n`;
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  // A typo or two, or a prefix of a longer flag (--web-identity for --web-identity-jwks).
  const near = bestDistance <= Math.max(1, Math.floor(word.length / 3));
  const prefix = candidates.filter((c) => c.startsWith(word));
  if (near) return best;
  return prefix.length === 1 ? prefix[0] : undefined;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length]!;
}
