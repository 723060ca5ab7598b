/**
 * A small parser of the Prometheus text exposition format (version 0.0.4), for tests that
 * scrape /metrics over HTTP. prom-client only writes this format, so the tests read it
 * back independently: `# TYPE` lines, samples `name{label="value",...} value`, label
 * values with the format's escapes (\\, \", \n).
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** Samples of `name` whose labels include all of `labels`. */
  select(name: string, labels?: Readonly<Record<string, string>>): Sample[];
  /** The one sample of `name` with exactly these labels; throws when there is none. */
  value(name: string, labels?: Readonly<Record<string, string>>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  // Prometheus parses floats as Go does, NaN in any case (prom-client writes "Nan").
  if (text.toLowerCase() === "nan") return NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`not a sample value: '${text}'`);
  return n;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (!m) throw new Error(`bad labels in line: ${line}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      else if (!line.startsWith("# HELP ")) throw new Error(`bad comment line: ${line}`);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    samples.push({
      name: m[1]!,
      labels: m[2] === undefined ? {} : parseLabels(m[2], line),
      value: parseValue(m[3]!),
    });
  }
  const matches = (s: Sample, labels: Readonly<Record<string, string>>) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const select = (name: string, labels: Readonly<Record<string, string>> = {}) =>
    samples.filter((s) => s.name === name && matches(s, labels));
  return {
    types,
    samples,
    select,
    value(name, labels = {}) {
      const exact = select(name, labels).filter(
        (s) => Object.keys(s.labels).length === Object.keys(labels).length,
      );
      if (exact.length !== 1)
        throw new Error(
          `expected one sample ${name}${JSON.stringify(labels)}, found ${exact.length}`,
        );
      return exact[0]!.value;
    },
  };
}
