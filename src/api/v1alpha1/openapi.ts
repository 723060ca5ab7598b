/**
 * What the API server does with a CRD's structural schema on every write:
 * prune unknown fields, apply defaults, validate types, enums, ranges and
 * patterns, and evaluate the CEL rules (x-kubernetes-validations). Only the CEL
 * forms the keyhaven CRDs use are understood; `celSupported` lets a test prove that
 * every rule in crds/ is one of them. Used by the in-memory API server (tests and
 * `serve --seed`), never by the controller against a real cluster.
 */
import type { Schema } from "./schemas.js";

export interface FieldError {
  readonly path: string;
  readonly message: string;
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Removes fields the schema does not declare, unless it preserves unknown fields. */
export function prune(schema: Schema, value: Json): Json {
  if (schema["x-kubernetes-preserve-unknown-fields"]) return value;
  if (isObject(value) && schema.type === "object") {
    if (schema.additionalProperties) {
      const ap = schema.additionalProperties;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, prune(ap, v)]));
    }
    if (!schema.properties) return value;
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) {
      const sub = schema.properties[k];
      if (sub) out[k] = prune(sub, v);
    }
    return out;
  }
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => prune(items, v));
  }
  return value;
}

/** Fills defaults top-down, as the API server does (a defaulted object gets its children's defaults too). */
export function applyDefaults(schema: Schema, value: Json): Json {
  if (isObject(value) && schema.properties) {
    const out: Record<string, Json> = { ...value };
    for (const [k, sub] of Object.entries(schema.properties)) {
      if (out[k] === undefined && sub.default !== undefined) out[k] = structuredClone(sub.default);
      if (out[k] !== undefined) out[k] = applyDefaults(sub, out[k]);
    }
    return out;
  }
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => applyDefaults(items, v));
  }
  return value;
}

/** Validates `value` (and CEL transition rules against `old`, when updating). */
export function validate(schema: Schema, value: Json, old: Json, path = ""): FieldError[] {
  const errors: FieldError[] = [];
  const at = path || "<root>";
  const fail = (message: string) => errors.push({ path: at, message });
  if (value === undefined || value === null) return errors;
  switch (schema.type) {
    case "object":
      if (!isObject(value)) {
        fail(`Invalid value: "${typeof value}": ${at} in body must be of type object`);
        return errors;
      }
      for (const r of schema.required ?? [])
        if (value[r] === undefined) errors.push({ path: join(path, r), message: "Required value" });
      if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties)
        fail(
          `Too many: ${Object.keys(value).length}: must have at most ${schema.maxProperties} items`,
        );
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.properties?.[k] ?? schema.additionalProperties;
        if (sub)
          errors.push(...validate(sub, v, isObject(old) ? old[k] : undefined, join(path, k)));
      }
      break;
    case "array":
      if (!Array.isArray(value)) {
        fail(`Invalid value: "${typeof value}": ${at} in body must be of type array`);
        return errors;
      }
      if (schema.minItems !== undefined && value.length < schema.minItems)
        fail(
          `Invalid value: ${value.length}: ${at} in body should have at least ${schema.minItems} items`,
        );
      if (schema.maxItems !== undefined && value.length > schema.maxItems)
        fail(`Too many: ${value.length}: must have at most ${schema.maxItems} items`);
      if (schema["x-kubernetes-list-type"] === "set") {
        const seen = new Set<string>();
        value.forEach((v, i) => {
          const k = JSON.stringify(v);
          if (seen.has(k)) errors.push({ path: `${path}[${i}]`, message: `Duplicate value: ${k}` });
          seen.add(k);
        });
      }
      if (schema.items) {
        const items = schema.items;
        value.forEach((v, i) => errors.push(...validate(items, v, undefined, `${path}[${i}]`)));
      }
      break;
    case "string":
      if (typeof value !== "string") {
        fail(
          `Invalid value: "${typeof value}": ${at} in body must be of type string: "${typeof value}"`,
        );
        return errors;
      }
      if (schema.enum && !schema.enum.includes(value))
        fail(
          `Unsupported value: "${value}": supported values: ${schema.enum.map((e) => `"${e}"`).join(", ")}`,
        );
      if (schema.minLength !== undefined && value.length < schema.minLength)
        fail(
          `Invalid value: "${value}": ${at} in body should be at least ${schema.minLength} chars long`,
        );
      if (schema.maxLength !== undefined && value.length > schema.maxLength)
        fail(`Too long: may not be more than ${schema.maxLength} bytes`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value))
        fail(`Invalid value: "${value}": ${at} in body should match '${schema.pattern}'`);
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) {
        fail(`Invalid value: "${typeof value}": ${at} in body must be of type integer`);
        return errors;
      }
      if (schema.minimum !== undefined && value < schema.minimum)
        fail(
          `Invalid value: ${value}: ${at} in body should be greater than or equal to ${schema.minimum}`,
        );
      if (schema.maximum !== undefined && value > schema.maximum)
        fail(
          `Invalid value: ${value}: ${at} in body should be less than or equal to ${schema.maximum}`,
        );
      break;
    case "boolean":
      if (typeof value !== "boolean")
        fail(`Invalid value: "${typeof value}": ${at} in body must be of type boolean`);
      break;
  }
  if (errors.length === 0)
    for (const rule of schema["x-kubernetes-validations"] ?? []) {
      const ok = evaluateCel(rule.rule, value, old);
      if (ok === false) fail(`Invalid value: "object": ${rule.message}`);
    }
  return errors;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

type Rule = (self: Json, old: Json) => boolean | undefined;
const field = (v: Json, k: string): Json => (isObject(v) ? v[k] : undefined);
const has = (v: Json, k: string) => field(v, k) !== undefined;
const equal = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);

/** The CEL forms the CRDs use, each with its meaning. Transition rules return undefined on create. */
const CEL: readonly { pattern: RegExp; build: (m: RegExpExecArray) => Rule }[] = [
  {
    pattern: /^self == oldSelf$/,
    build: () => (self, old) => (old === undefined ? undefined : equal(self, old)),
  },
  {
    pattern: /^has\(self\.(\w+)\) != has\(self\.(\w+)\)$/,
    build: (m) => (self) => has(self, m[1]!) !== has(self, m[2]!),
  },
  {
    pattern: /^!\(has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$/,
    build: (m) => (self) => !(has(self, m[1]!) && has(self, m[2]!)),
  },
  {
    pattern:
      /^!has\(oldSelf\.(\w+)\) \|\| \(has\(self\.(\w+)\) && self\.(\w+) == oldSelf\.(\w+)\)$/,
    build: (m) => (self, old) =>
      old === undefined
        ? undefined
        : !has(old, m[1]!) || (has(self, m[2]!) && equal(field(self, m[3]!), field(old, m[4]!))),
  },
  {
    pattern: /^has\(self\.(\w+)\) == \(has\(self\.(\w+)\) && self\.(\w+) == '([^']*)'\)$/,
    build: (m) => (self) => has(self, m[1]!) === (has(self, m[2]!) && field(self, m[3]!) === m[4]),
  },
  {
    pattern: /^!\(has\(self\.(\w+)\) && has\(self\.(\w+)\) && self\.(\w+)\)$/,
    build: (m) => (self) => !(has(self, m[1]!) && has(self, m[2]!) && field(self, m[3]!) === true),
  },
  {
    pattern: /^has\(self\.(\w+)\) == has\(oldSelf\.(\w+)\)$/,
    build: (m) => (self, old) =>
      old === undefined ? undefined : has(self, m[1]!) === has(old, m[2]!),
  },
  {
    pattern: /^!has\(self\.(\w+)\) \|\| !has\(self\.(\w+)\) \|\| self\.(\w+) != '([^']*)'$/,
    build: (m) => (self) => !has(self, m[1]!) || !has(self, m[2]!) || field(self, m[3]!) !== m[4],
  },
  {
    pattern:
      /^has\(self\.(\w+)\) == \(has\(self\.(\w+)\) && self\.(\w+) in \[((?:'[^']*'(?:, )?)+)\]\)$/,
    build: (m) => {
      const values = [...m[4]!.matchAll(/'([^']*)'/g)].map((v) => v[1]);
      return (self) =>
        has(self, m[1]!) === (has(self, m[2]!) && values.includes(field(self, m[3]!) as string));
    },
  },
  {
    pattern: /^!self\.startsWith\('([^']*)'\)$/,
    build: (m) => (self) => typeof self === "string" && !self.startsWith(m[1]!),
  },
];

export function celSupported(rule: string): boolean {
  return CEL.some((c) => c.pattern.test(rule));
}

function evaluateCel(rule: string, self: Json, old: Json): boolean | undefined {
  for (const c of CEL) {
    const m = c.pattern.exec(rule);
    if (m) return c.build(m)(self, old);
  }
  throw new Error(`CEL rule not understood by the in-memory API server: ${rule}`);
}

/** Every CEL rule in a schema, for the test that proves the fake understands them all. */
export function celRules(schema: Schema): string[] {
  const own = (schema["x-kubernetes-validations"] ?? []).map((r) => r.rule);
  const children = [
    ...Object.values(schema.properties ?? {}),
    ...(schema.items ? [schema.items] : []),
    ...(schema.additionalProperties ? [schema.additionalProperties] : []),
  ];
  return [...own, ...children.flatMap(celRules)];
}
