/**
 * The AWS policy language as KMS uses it, compiled once per policy text.
 *
 * A key policy (resource-based: every statement names a Principal) and a caller
 * policy ("IAM policy", identity-based: no Principal) share one grammar:
 *
 *   { Version?, Id?, Statement: Statement | Statement[] }
 *   Statement = { Sid?, Effect: Allow|Deny, Principal|NotPrincipal (key policies only),
 *                 Action|NotAction, Resource|NotResource, Condition? }
 *
 * `compilePolicy` validates and turns the text into matchers (wildcards become
 * linear-time matchers, see patterns.ts; condition blocks become closures) and caches the
 * result by text, so a request never parses JSON. Malformed documents throw
 * PolicyError with a message that says which statement and field to fix.
 */
import { compileConditions, type CompiledCondition } from "./conditions.js";
import { compileWildcard, PolicyError } from "./patterns.js";

export { PolicyError };

export type PolicyKind = "key" | "identity";

/** Who a Principal element names. */
export interface PrincipalSet {
  /** "*" or {"AWS":"*"}: everyone. */
  readonly anyone: boolean;
  /** Account ids named by `123456789012` or `arn:aws:iam::123456789012:root`. */
  readonly accounts: ReadonlySet<string>;
  /** Exact principal ARNs (users, roles, assumed-role sessions). */
  readonly arns: ReadonlySet<string>;
  /** Service principals (never match a caller of Keyhaven; kept for round trips). */
  readonly services: readonly string[];
}

export interface CompiledStatement {
  readonly index: number;
  readonly sid?: string;
  readonly effect: "Allow" | "Deny";
  readonly principal?: PrincipalSet;
  readonly notPrincipal?: PrincipalSet;
  /** True when the action list came from NotAction. */
  readonly notAction: boolean;
  readonly matchesAction: (action: string) => boolean;
  readonly notResource: boolean;
  /** `resource` undefined = an action that has no resource (CreateKey, ListKeys, ...). */
  readonly matchesResource: (resource: string | undefined) => boolean;
  readonly conditions: readonly CompiledCondition[];
  /** Condition keys (lower-case) this statement reads, e.g. for lazily computed values. */
  readonly conditionKeys: ReadonlySet<string>;
}

export interface CompiledPolicy {
  readonly kind: PolicyKind;
  readonly text: string;
  readonly statements: readonly CompiledStatement[];
  /** Lower-case condition keys read by any statement. */
  readonly conditionKeys: ReadonlySet<string>;
}

const STATEMENT_FIELDS = new Set([
  "Sid",
  "Effect",
  "Principal",
  "NotPrincipal",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);
const ACTION = /^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$/;
const ACCOUNT = /^\d{12}$/;
const ROOT_ARN = /^arn:[a-z-]+:iam::(\d{12}):root$/;
const PRINCIPAL_ARN = /^arn:[a-z-]+:(iam|sts)::\d{12}:[\w+=,.@/:-]+$/;

const hasWildcard = (s: string) => s.includes("*") || s.includes("?");

function stringList(value: unknown, where: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new PolicyError(`${where} must not be empty.`);
  return list.map((v) => {
    if (typeof v !== "string" || v.length === 0)
      throw new PolicyError(`${where} must be a string or a list of strings.`);
    return v;
  });
}

function compileActions(patterns: string[], where: string): (action: string) => boolean {
  for (const p of patterns)
    if (!ACTION.test(p))
      throw new PolicyError(
        `${where} has an invalid action '${p}'; write actions as kms:Encrypt, kms:Get* or *.`,
      );
  if (patterns.includes("*")) return () => true;
  // IAM action names are case-insensitive.
  const exact = new Set(patterns.filter((p) => !hasWildcard(p)).map((p) => p.toLowerCase()));
  const wild = patterns.filter(hasWildcard).map((p) => compileWildcard(p, true));
  const memo = new Map<string, boolean>();
  return (action) => {
    let hit = memo.get(action);
    if (hit === undefined) {
      const lower = action.toLowerCase();
      hit = exact.has(lower) || wild.some((matches) => matches(lower));
      if (memo.size < 256) memo.set(action, hit);
    }
    return hit;
  };
}

function compileResources(
  patterns: string[],
  where: string,
): (resource: string | undefined) => boolean {
  for (const p of patterns)
    if (p !== "*" && !p.startsWith("arn:"))
      throw new PolicyError(`${where} has an invalid resource '${p}'; use "*" or an ARN.`);
  if (patterns.includes("*")) return () => true;
  const exact = new Set(patterns.filter((p) => !hasWildcard(p)));
  const wild = patterns.filter(hasWildcard).map((p) => compileWildcard(p));
  return (resource) =>
    resource !== undefined && (exact.has(resource) || wild.some((matches) => matches(resource)));
}

function compilePrincipal(value: unknown, where: string): PrincipalSet {
  if (value === "*") return { anyone: true, accounts: new Set(), arns: new Set(), services: [] };
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new PolicyError(
      `${where} must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}.`,
    );
  let anyone = false;
  const accounts = new Set<string>();
  const arns = new Set<string>();
  const services: string[] = [];
  for (const [type, raw] of Object.entries(value as Record<string, unknown>)) {
    const values = stringList(raw, `${where}.${type}`);
    if (type === "AWS") {
      for (const v of values) {
        const root = ROOT_ARN.exec(v);
        if (v === "*") anyone = true;
        else if (ACCOUNT.test(v)) accounts.add(v);
        else if (root) accounts.add(root[1]!);
        else if (PRINCIPAL_ARN.test(v) && !hasWildcard(v)) arns.add(v);
        else
          throw new PolicyError(
            `${where} contains an invalid principal '${v}'; use an account id, an IAM or STS principal ARN (no wildcards), or "*".`,
          );
      }
    } else if (type === "Service") {
      services.push(...values);
    } else if (type === "Federated" || type === "CanonicalUser") {
      services.push(...values.map((v) => `${type}:${v}`));
    } else {
      throw new PolicyError(
        `${where} has an unknown principal type '${type}'; use AWS, Service or Federated.`,
      );
    }
  }
  return { anyone, accounts, arns, services };
}

function compileStatement(raw: unknown, index: number, kind: PolicyKind): CompiledStatement {
  let where = `Statement ${index + 1}`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new PolicyError(`${where} must be a JSON object.`);
  const s = raw as Record<string, unknown>;
  if (s["Sid"] !== undefined) {
    if (typeof s["Sid"] !== "string") throw new PolicyError(`${where}: Sid must be a string.`);
    where = `Statement ${index + 1} (Sid "${s["Sid"]}")`;
  }
  for (const field of Object.keys(s))
    if (!STATEMENT_FIELDS.has(field))
      throw new PolicyError(
        `${where} has an unknown field '${field}'; allowed fields are ${[...STATEMENT_FIELDS].join(", ")}.`,
      );
  const effect = s["Effect"];
  if (effect !== "Allow" && effect !== "Deny")
    throw new PolicyError(`${where} must have an Effect of "Allow" or "Deny".`);

  const one = (a: string, b: string, required: boolean) => {
    if (s[a] !== undefined && s[b] !== undefined)
      throw new PolicyError(`${where} has both ${a} and ${b}; use one of them.`);
    if (required && s[a] === undefined && s[b] === undefined)
      throw new PolicyError(`${where} must have ${a} or ${b}.`);
  };
  one("Action", "NotAction", true);
  one("Resource", "NotResource", true);
  one("Principal", "NotPrincipal", kind === "key");
  if (kind === "identity" && (s["Principal"] !== undefined || s["NotPrincipal"] !== undefined))
    throw new PolicyError(
      `${where} names a Principal; caller (IAM) policies apply to the principal they are attached to and must not name one.`,
    );

  const notAction = s["NotAction"] !== undefined;
  const actionField = notAction ? "NotAction" : "Action";
  const matchesAction = compileActions(
    stringList(s[actionField], `${where}: ${actionField}`),
    `${where}: ${actionField}`,
  );
  const notResource = s["NotResource"] !== undefined;
  const resourceField = notResource ? "NotResource" : "Resource";
  const matchesResource = compileResources(
    stringList(s[resourceField], `${where}: ${resourceField}`),
    `${where}: ${resourceField}`,
  );
  const { conditions, keys } = compileConditions(s["Condition"], `${where}: Condition`);
  return {
    index,
    ...(typeof s["Sid"] === "string" && { sid: s["Sid"] }),
    effect,
    ...(s["Principal"] !== undefined && {
      principal: compilePrincipal(s["Principal"], `${where}: Principal`),
    }),
    ...(s["NotPrincipal"] !== undefined && {
      notPrincipal: compilePrincipal(s["NotPrincipal"], `${where}: NotPrincipal`),
    }),
    notAction,
    matchesAction,
    notResource,
    matchesResource,
    conditions,
    conditionKeys: keys,
  };
}

function parse(text: string, kind: PolicyKind): CompiledPolicy {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`The policy is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof document !== "object" || document === null || Array.isArray(document))
    throw new PolicyError("The policy must be a JSON object with a Statement list.");
  const d = document as Record<string, unknown>;
  for (const field of Object.keys(d))
    if (field !== "Version" && field !== "Id" && field !== "Statement")
      throw new PolicyError(
        `The policy has an unknown top-level field '${field}'; allowed are Version, Id and Statement.`,
      );
  if (d["Version"] !== undefined && d["Version"] !== "2012-10-17" && d["Version"] !== "2008-10-17")
    throw new PolicyError(
      `The policy Version must be "2012-10-17" (or the older "2008-10-17"), not ${JSON.stringify(d["Version"])}.`,
    );
  const raw = d["Statement"];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) throw new PolicyError("The policy must contain at least one Statement.");
  const statements = list.map((s, i) => compileStatement(s, i, kind));
  const sids = new Set<string>();
  for (const s of statements) {
    if (s.sid === undefined || s.sid === "") continue;
    if (sids.has(s.sid))
      throw new PolicyError(`Statement ids (Sid) must be unique; "${s.sid}" appears twice.`);
    sids.add(s.sid);
  }
  const conditionKeys = new Set<string>();
  for (const s of statements) for (const k of s.conditionKeys) conditionKeys.add(k);
  return Object.freeze({ kind, text, statements, conditionKeys });
}

const CACHE_LIMIT = 2048;
const caches: Record<PolicyKind, Map<string, CompiledPolicy>> = {
  key: new Map(),
  identity: new Map(),
};

/**
 * Parses, validates and compiles a policy; the result is cached by text, so the
 * same policy is compiled once however many requests use it. Throws PolicyError.
 */
export function compilePolicy(text: string, kind: PolicyKind): CompiledPolicy {
  const cache = caches[kind];
  let compiled = cache.get(text);
  if (!compiled) {
    compiled = parse(text, kind);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(text, compiled);
  }
  return compiled;
}
