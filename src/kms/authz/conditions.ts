/**
 * Policy Condition blocks: `{ "<[ForAnyValue:|ForAllValues:]Operator[IfExists]>": { "<key>": value | [values] } }`.
 * Operators, keys and values AND together; the values of one key OR together (for
 * a negated operator such as StringNotEquals: none may match). A key that is absent
 * from the request fails every operator except negated ones, IfExists, Null and
 * ForAllValues (which is vacuously true) — IAM's rules.
 * Condition values may use policy variables such as `${aws:PrincipalTag/team}`.
 */
import { compileWildcard, PolicyError, type WildcardMatcher } from "./patterns.js";

/** Values of a condition key in one request: undefined when the key is absent. Keys are lower-case. */
export interface ConditionContext {
  get(key: string): readonly string[] | undefined;
  /**
   * Whether a key's value cannot be told (an encryption-context key the request spells
   * two ways, see encryptionContext.ts); absent when no key is ambiguous.
   */
  readonly ambiguous?: (key: string) => boolean;
}

export type CompiledCondition = (ctx: ConditionContext) => boolean;

type ValueMatcher = (requestValue: string, ctx: ConditionContext) => boolean;

interface OperatorSpec {
  readonly negated: boolean;
  /** Compiles the condition values into "does a request value match any of them". */
  readonly compile: (values: string[], where: string) => ValueMatcher;
}

const VARIABLE = /\$\{([^}]+)\}/g;

/** A condition value with policy variables resolved from the request; undefined if one is missing. */
function resolver(value: string): (ctx: ConditionContext) => string | undefined {
  if (!value.includes("${")) return () => value;
  return (ctx) => {
    let missing = false;
    const out = value.replace(VARIABLE, (_, name: string) => {
      if (name === "*") return "*";
      if (name === "?") return "?";
      if (name === "$") return "$";
      const v = ctx.get(name.toLowerCase())?.[0];
      if (v === undefined) missing = true;
      return v ?? "";
    });
    return missing ? undefined : out;
  };
}

function stringOperator(
  compare: (pattern: string, value: string) => boolean,
  prepare: (v: string) => string = (v) => v,
): OperatorSpec["compile"] {
  return (values) => {
    const statics = values.filter((v) => !v.includes("${")).map(prepare);
    const dynamic = values.filter((v) => v.includes("${")).map(resolver);
    const set = new Set(statics);
    const exactOnly = compare === exactCompare;
    return (requestValue, ctx) => {
      const rv = prepare(requestValue);
      if (exactOnly ? set.has(rv) : statics.some((p) => compare(p, rv))) return true;
      for (const d of dynamic) {
        const p = d(ctx);
        if (p !== undefined && compare(prepare(p), rv)) return true;
      }
      return false;
    };
  };
}

const exactCompare = (a: string, b: string) => a === b;
const likeCache = new Map<string, WildcardMatcher>();
const likeCompare = (pattern: string, value: string) => {
  let matches = likeCache.get(pattern);
  if (!matches) {
    matches = compileWildcard(pattern);
    if (likeCache.size < 4096) likeCache.set(pattern, matches);
  }
  return matches(value);
};

function numericOperator(test: (a: number, b: number) => boolean): OperatorSpec["compile"] {
  return (values, where) => {
    const nums = values.map((v) => {
      const n = Number(v);
      if (v.trim() === "" || Number.isNaN(n))
        throw new PolicyError(`${where}: '${v}' is not a number.`);
      return n;
    });
    return (rv) => {
      const n = Number(rv);
      return rv.trim() !== "" && !Number.isNaN(n) && nums.some((c) => test(n, c));
    };
  };
}

function parseDate(v: string): number {
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return t;
}

function dateOperator(test: (a: number, b: number) => boolean): OperatorSpec["compile"] {
  return (values, where) => {
    const dates = values.map((v) => {
      const t = parseDate(v);
      if (Number.isNaN(t))
        throw new PolicyError(
          `${where}: '${v}' is not a date; use ISO 8601 (2026-01-31T00:00:00Z) or epoch seconds.`,
        );
      return t;
    });
    return (rv) => {
      const t = parseDate(rv);
      return !Number.isNaN(t) && dates.some((c) => test(t, c));
    };
  };
}

const boolOperator: OperatorSpec["compile"] = (values, where) => {
  const wanted = values.map((v): string => {
    const l = v.toLowerCase();
    if (l !== "true" && l !== "false")
      throw new PolicyError(`${where}: Bool values are "true" or "false", not '${v}'.`);
    return l;
  });
  return (rv) => wanted.includes(rv.toLowerCase());
};

interface Cidr {
  readonly bytes: Buffer;
  readonly bits: number;
}

function ipBytes(ip: string): Buffer | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((p) => p <= 255) ? Buffer.from(parts) : undefined;
  }
  if (!ip.includes(":")) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return ipBytes(mapped[1]!);
  const [head, tail, extra] = ip.split("::");
  if (extra !== undefined) return undefined;
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(Math.max(fill, 0)).fill("0"), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function parseCidr(v: string, where: string): Cidr {
  const [ip, len] = v.split("/");
  const bytes = ipBytes(ip ?? "");
  const bits = len === undefined ? (bytes?.length ?? 0) * 8 : Number(len);
  if (!bytes || !Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8)
    throw new PolicyError(`${where}: '${v}' is not an IP address or CIDR block.`);
  return { bytes, bits };
}

function inCidr(ip: Buffer, cidr: Cidr): boolean {
  if (ip.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.bits; bit += 8) {
    const n = Math.min(8, cidr.bits - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((ip[bit / 8]! & mask) !== (cidr.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

const ipOperator: OperatorSpec["compile"] = (values, where) => {
  const blocks = values.map((v) => parseCidr(v, where));
  return (rv) => {
    const ip = ipBytes(rv);
    return ip !== undefined && blocks.some((b) => inCidr(ip, b));
  };
};

// A Map, not an object literal: operator names come from policy documents, and
// `constructor` or `__proto__` must be unknown operators, not Object.prototype members.
const OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map(
  Object.entries({
    stringequals: { negated: false, compile: stringOperator(exactCompare) },
    stringnotequals: { negated: true, compile: stringOperator(exactCompare) },
    stringequalsignorecase: {
      negated: false,
      compile: stringOperator(exactCompare, (v) => v.toLowerCase()),
    },
    stringnotequalsignorecase: {
      negated: true,
      compile: stringOperator(exactCompare, (v) => v.toLowerCase()),
    },
    stringlike: { negated: false, compile: stringOperator(likeCompare) },
    stringnotlike: { negated: true, compile: stringOperator(likeCompare) },
    numericequals: { negated: false, compile: numericOperator((a, b) => a === b) },
    numericnotequals: { negated: true, compile: numericOperator((a, b) => a === b) },
    numericlessthan: { negated: false, compile: numericOperator((a, b) => a < b) },
    numericlessthanequals: { negated: false, compile: numericOperator((a, b) => a <= b) },
    numericgreaterthan: { negated: false, compile: numericOperator((a, b) => a > b) },
    numericgreaterthanequals: { negated: false, compile: numericOperator((a, b) => a >= b) },
    dateequals: { negated: false, compile: dateOperator((a, b) => a === b) },
    datenotequals: { negated: true, compile: dateOperator((a, b) => a === b) },
    datelessthan: { negated: false, compile: dateOperator((a, b) => a < b) },
    datelessthanequals: { negated: false, compile: dateOperator((a, b) => a <= b) },
    dategreaterthan: { negated: false, compile: dateOperator((a, b) => a > b) },
    dategreaterthanequals: { negated: false, compile: dateOperator((a, b) => a >= b) },
    bool: { negated: false, compile: boolOperator },
    binaryequals: { negated: false, compile: stringOperator(exactCompare) },
    ipaddress: { negated: false, compile: ipOperator },
    notipaddress: { negated: true, compile: ipOperator },
    // IAM's ArnEquals and ArnLike both accept wildcards in each ARN segment.
    arnequals: { negated: false, compile: stringOperator(likeCompare) },
    arnlike: { negated: false, compile: stringOperator(likeCompare) },
    arnnotequals: { negated: true, compile: stringOperator(likeCompare) },
    arnnotlike: { negated: true, compile: stringOperator(likeCompare) },
  } satisfies Record<string, OperatorSpec>),
);

function scalarValues(raw: unknown, where: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new PolicyError(`${where} must have at least one value.`);
  return list.map((v) => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new PolicyError(`${where} values must be strings, numbers or booleans.`);
  });
}

function compileOne(
  operatorName: string,
  key: string,
  raw: unknown,
  where: string,
): CompiledCondition {
  let name = operatorName;
  let set: "any" | "all" | undefined;
  const lower = name.toLowerCase();
  if (lower.startsWith("foranyvalue:")) {
    set = "any";
    name = name.slice("ForAnyValue:".length);
  } else if (lower.startsWith("forallvalues:")) {
    set = "all";
    name = name.slice("ForAllValues:".length);
  }
  let ifExists = false;
  if (name.toLowerCase().endsWith("ifexists")) {
    ifExists = true;
    name = name.slice(0, -"IfExists".length);
  }
  const k = key.toLowerCase();
  const values = scalarValues(raw, `${where}: ${operatorName} ${key}`);
  if (name.toLowerCase() === "null") {
    if (set || ifExists) throw new PolicyError(`${where}: Null takes no set or IfExists modifier.`);
    const wants = values.map((v) => {
      const l = v.toLowerCase();
      if (l !== "true" && l !== "false")
        throw new PolicyError(`${where}: Null values are "true" or "false", not '${v}'.`);
      return l === "true";
    });
    return (ctx) => {
      const present = (ctx.get(k)?.length ?? 0) > 0;
      return wants.some((absent) => absent !== present);
    };
  }
  const spec = OPERATORS.get(name.toLowerCase());
  if (!spec)
    throw new PolicyError(
      `${where} uses an unknown condition operator '${operatorName}'; use String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress, Arn*, Null, optionally with IfExists and ForAnyValue:/ForAllValues:.`,
    );
  const matches = spec.compile(values, `${where}: ${operatorName}`);
  const negated = spec.negated;
  return (ctx) => {
    const rvs = ctx.get(k);
    if (rvs === undefined) {
      if (ifExists || set === "all") return true;
      if (set === "any") return false;
      return negated;
    }
    const hit = (v: string) => (negated ? !matches(v, ctx) : matches(v, ctx));
    if (set === "all") return rvs.every(hit);
    if (set === "any") return rvs.some(hit);
    return negated ? rvs.every(hit) : rvs.some(hit);
  };
}

/** Compiles a Condition element; returns the conditions (all must hold) and the keys they read. */
export function compileConditions(
  raw: unknown,
  where: string,
): { conditions: CompiledCondition[]; keys: Set<string> } {
  const conditions: CompiledCondition[] = [];
  const keys = new Set<string>();
  if (raw === undefined) return { conditions, keys };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new PolicyError(
      `${where} must be an object such as {"StringEquals": {"kms:CallerAccount": "111122223333"}}.`,
    );
  for (const [operator, block] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof block !== "object" || block === null || Array.isArray(block))
      throw new PolicyError(`${where}: ${operator} must map condition keys to values.`);
    for (const [key, values] of Object.entries(block as Record<string, unknown>)) {
      if (!/^[a-zA-Z0-9-]+:.+/.test(key))
        throw new PolicyError(
          `${where}: '${key}' is not a condition key; keys look like kms:EncryptionContext:Department or aws:PrincipalTag/team.`,
        );
      conditions.push(compileOne(operator, key, values, where));
      keys.add(key.toLowerCase());
      if (typeof values === "string" || Array.isArray(values))
        for (const v of Array.isArray(values) ? values : [values])
          if (typeof v === "string")
            for (const m of v.matchAll(VARIABLE)) keys.add(m[1]!.toLowerCase());
    }
  }
  return { conditions, keys };
}
