/**
 * The condition keys of one request, computed lazily from what the request is
 * about. Keys are looked up lower-case (IAM condition keys are case-insensitive,
 * including the encryption-context and tag key parts; values stay case-sensitive).
 */
import type { ConditionContext } from "./conditions.js";
import { canonicalContext, type EncryptionContextMap } from "./encryptionContext.js";
import { principalArnKey, type Principal } from "./principal.js";

export interface KeyFacts {
  readonly arn: string;
  readonly keySpec: string;
  readonly keyUsage: string;
  readonly origin: string;
  readonly tags: readonly { readonly TagKey: string; readonly TagValue: string }[];
  /** Alias names of the key; only needed when a policy reads kms:ResourceAliases. */
  readonly aliases?: readonly string[];
  /** Present on multi-Region keys (kms:MultiRegion). */
  readonly multiRegion?: object;
}

export interface RequestFacts {
  readonly principal: Principal;
  readonly now: Date;
  readonly sourceIp: string;
  readonly secureTransport: boolean;
  readonly key?: KeyFacts;
  /** The encryption context this action uses (absent when the request has none). */
  readonly encryptionContext?: EncryptionContextMap;
  /** The alias named in the request's KeyId, e.g. alias/app. */
  readonly requestAlias?: string;
  /**
   * Tags the request sets (aws:RequestTag/*) and the tag keys it names (aws:TagKeys); a
   * Map, so that a tag key such as `__proto__` is a key like any other.
   */
  readonly requestTags?: ReadonlyMap<string, string>;
  readonly tagKeys?: readonly string[];
  /** For CreateGrant: the grant requested. */
  readonly grant?: {
    readonly operations: readonly string[];
    readonly granteePrincipal: string;
    readonly retiringPrincipal?: string;
  };
  /** Any other operation-specific keys, lower-case (e.g. kms:bypasspolicylockoutsafetycheck). */
  readonly extra?: ReadonlyMap<string, readonly string[]>;
}

function lookupInsensitive(
  entries: Iterable<readonly [string, string]>,
  key: string,
): readonly string[] | undefined {
  for (const [k, v] of entries) if (k.toLowerCase() === key) return [v];
  return undefined;
}

const EC_PREFIX = "kms:encryptioncontext:";

const nonEmpty = (list: readonly string[] | undefined) =>
  list !== undefined && list.length > 0 ? list : undefined;

function compute(f: RequestFacts, key: string): readonly string[] | undefined {
  const colon = key.indexOf(":");
  const slash = key.indexOf("/");
  if (key.startsWith(EC_PREFIX)) {
    // The view grants use too; an ambiguous key is handled before conditions run (evaluate.ts).
    const value = canonicalContext(f.encryptionContext).pairs.get(key.slice(EC_PREFIX.length));
    return value === undefined ? undefined : [value];
  }
  if (slash > colon && colon > 0) {
    const prefix = key.slice(0, slash);
    const name = key.slice(slash + 1);
    switch (prefix) {
      case "aws:principaltag":
        return lookupInsensitive(Object.entries(f.principal.tags), name);
      case "aws:resourcetag":
        return f.key
          ? lookupInsensitive(
              f.key.tags.map((t) => [t.TagKey, t.TagValue] as const),
              name,
            )
          : undefined;
      case "aws:requesttag":
        return f.requestTags ? lookupInsensitive(f.requestTags, name) : undefined;
    }
  }
  const p = f.principal;
  switch (key) {
    case "kms:encryptioncontextkeys":
      return nonEmpty(canonicalContext(f.encryptionContext).keys);
    case "kms:calleraccount":
      return [p.account];
    case "kms:viaservice":
      return undefined;
    case "kms:grantoperations":
      return f.grant?.operations;
    case "kms:grantisforawsresource":
      return f.grant ? ["false"] : undefined;
    case "kms:granteeprincipal":
      return f.grant ? [f.grant.granteePrincipal] : undefined;
    case "kms:retiringprincipal":
      return f.grant?.retiringPrincipal !== undefined ? [f.grant.retiringPrincipal] : undefined;
    case "kms:keyspec":
    case "kms:customermasterkeyspec":
      return f.key ? [f.key.keySpec] : undefined;
    case "kms:keyusage":
    case "kms:customermasterkeyusage":
      return f.key ? [f.key.keyUsage] : undefined;
    case "kms:keyorigin":
      return f.key ? [f.key.origin] : undefined;
    case "kms:multiregion":
      return f.key ? [String(f.key.multiRegion !== undefined)] : undefined;
    case "kms:requestalias":
      return f.requestAlias !== undefined ? [f.requestAlias] : undefined;
    case "kms:resourcealiases":
      return nonEmpty(f.key?.aliases);
    case "aws:tagkeys":
      return f.tagKeys;
    case "aws:currenttime":
      return [f.now.toISOString()];
    case "aws:epochtime":
      return [String(Math.floor(f.now.getTime() / 1000))];
    case "aws:securetransport":
      return [String(f.secureTransport)];
    case "aws:sourceip":
      return f.sourceIp ? [f.sourceIp.replace(/^::ffff:(?=\d+\.)/, "")] : undefined;
    case "aws:principalarn":
      return [principalArnKey(p)];
    case "aws:principalaccount":
      return [p.account];
    case "aws:principaltype":
      return [p.type === "Root" ? "Account" : p.type === "IAMUser" ? "User" : p.type];
    case "aws:username":
      return p.type === "IAMUser" ? [p.arn.slice(p.arn.lastIndexOf("/") + 1)] : undefined;
  }
  return f.extra?.get(key);
}

/** A ConditionContext over `facts`, computing each key at most once. */
export function requestConditions(facts: RequestFacts): ConditionContext {
  const memo = new Map<string, readonly string[] | undefined>();
  const { ambiguous } = canonicalContext(facts.encryptionContext);
  return {
    get(key) {
      if (memo.has(key)) return memo.get(key);
      const v = compute(facts, key);
      memo.set(key, v);
      return v;
    },
    ...(ambiguous.size > 0 && {
      ambiguous: (key: string) =>
        key.startsWith(EC_PREFIX) && ambiguous.has(key.slice(EC_PREFIX.length)),
    }),
  };
}
