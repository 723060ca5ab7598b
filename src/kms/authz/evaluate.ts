/**
 * AWS KMS's authorization decision, as a pure function.
 *
 * 1. An explicit Deny in the key policy or in a caller policy refuses, whatever else allows.
 * 2. Actions on no key (CreateKey, ListKeys, ...) and on an alias resource (kms:CreateAlias,
 *    kms:UpdateAlias, kms:DeleteAlias on arn:...:alias/NAME) need a caller policy that allows them.
 * 3. Actions on a key are allowed when
 *    - the key policy allows the caller directly (its ARN, its role, or "*") and the
 *      caller is in the key's account; or
 *    - the key policy allows the caller (directly, or its account: the delegation in
 *      the default key policy) and a caller policy allows too; or
 *    - a grant on the key allows it (see grants.ts).
 * 4. Otherwise the default is deny.
 * The account's root principal holds every caller-policy permission of its account.
 */
import type { ConditionContext } from "./conditions.js";
import { grantAllows, type Grant, type GrantRequest } from "./grants.js";
import type { CompiledPolicy, CompiledStatement, PrincipalSet } from "./policy.js";
import { principalArns, type Principal } from "./principal.js";

export interface AccessQuery {
  readonly principal: Principal;
  /** IAM action, e.g. kms:Encrypt. */
  readonly action: string;
  /**
   * A resource that is not a key, e.g. an alias ARN for kms:CreateAlias: only caller
   * policies can allow it (an alias has no policy of its own).
   */
  readonly resource?: string;
  /** The key acted on; absent for actions on no key. */
  readonly key?: {
    readonly keyId: string;
    readonly arn: string;
    readonly account: string;
    readonly policy: CompiledPolicy;
  };
  readonly conditions: ConditionContext;
  /** Grant-specific parts of the request (encryption context, child grant). */
  readonly grantRequest?: Pick<GrantRequest, "encryptionContext" | "childGrant">;
}

export type Decision =
  | {
      readonly allowed: true;
      readonly by: "key policy" | "caller policy" | "grant";
      readonly grantId?: string;
    }
  | { readonly allowed: false; readonly reason: string };

type PrincipalMatch = "direct" | "account" | undefined;

function matchPrincipalSet(set: PrincipalSet, p: Principal): PrincipalMatch {
  if (set.anyone || set.arns.has(p.arn) || (p.roleArn !== undefined && set.arns.has(p.roleArn)))
    return "direct";
  if (set.accounts.has(p.account)) return p.type === "Root" ? "direct" : "account";
  return undefined;
}

function statementPrincipal(s: CompiledStatement, p: Principal): PrincipalMatch {
  if (s.principal) return matchPrincipalSet(s.principal, p);
  if (s.notPrincipal) return matchPrincipalSet(s.notPrincipal, p) ? undefined : "direct";
  return "direct"; // identity policies: the principal they are attached to
}

function applies(
  s: CompiledStatement,
  action: string,
  resource: string | undefined,
  conditions: ConditionContext,
): boolean {
  if (s.matchesAction(action) === s.notAction) return false;
  // NotResource applies to everything it does not list; an action on no key is "*",
  // which only a "*" in the list excludes (matchesResource(undefined) is true only then).
  if (s.matchesResource(resource) === s.notResource) return false;
  // Fail closed on a condition key whose value cannot be told: a Deny applies, an Allow does not.
  const unsure = conditions.ambiguous;
  if (unsure && [...s.conditionKeys].some(unsure)) return s.effect === "Deny";
  for (const c of s.conditions) if (!c(conditions)) return false;
  return true;
}

export interface PolicyResult {
  readonly deny: boolean;
  readonly allow: PrincipalMatch;
}

/** Evaluates one policy: any applicable Deny, and the strongest applicable Allow. */
export function evaluatePolicy(
  policy: CompiledPolicy,
  principal: Principal,
  action: string,
  resource: string | undefined,
  conditions: ConditionContext,
): PolicyResult {
  let allow: PrincipalMatch;
  for (const s of policy.statements) {
    const who = statementPrincipal(s, principal);
    if (who === undefined) continue;
    if (!applies(s, action, resource, conditions)) continue;
    if (s.effect === "Deny") return { deny: true, allow: undefined };
    if (who === "direct") allow = "direct";
    else allow ??= "account";
  }
  return { deny: false, allow };
}

/**
 * The decision of the policies alone; `grantsMayAllow` says whether a grant could still
 * turn a refusal into an allow (an action on a key, refused for want of an Allow).
 */
export function decidePolicies(query: AccessQuery): {
  readonly decision: Decision;
  readonly grantsMayAllow: boolean;
} {
  const { principal: p, action, key } = query;
  const denied = (why: string, grantsMayAllow = false) => ({
    decision: { allowed: false, reason: why } as Decision,
    grantsMayAllow,
  });
  if (key) {
    const kp = evaluatePolicy(key.policy, p, action, key.arn, query.conditions);
    if (kp.deny) return denied("with an explicit deny in a resource-based policy");
    const iam = callerPolicies(query);
    if (iam.deny) return denied("with an explicit deny in an identity-based policy");
    if (kp.allow === "direct" && p.account === key.account)
      return { decision: { allowed: true, by: "key policy" }, grantsMayAllow: false };
    if (kp.allow !== undefined && iam.allow)
      return { decision: { allowed: true, by: "caller policy" }, grantsMayAllow: false };
    return kp.allow === undefined
      ? denied(`because no resource-based policy allows the ${action} action`, true)
      : denied(`because no identity-based policy allows the ${action} action`, true);
  }
  const iam = callerPolicies(query);
  if (iam.deny) return denied("with an explicit deny in an identity-based policy");
  if (iam.allow) return { decision: { allowed: true, by: "caller policy" }, grantsMayAllow: false };
  return denied(`because no identity-based policy allows the ${action} action`);
}

/** A grant that allows what the policies refused, if any; else the policies' refusal. */
export function decideWithGrants(
  query: AccessQuery,
  refused: Decision,
  grants: readonly Grant[],
): Decision {
  const key = query.key;
  if (!key || grants.length === 0) return refused;
  const request: GrantRequest = {
    keyId: key.keyId,
    action: query.action,
    principalArns: principalArns(query.principal),
    ...query.grantRequest,
  };
  const grant = grants.find((g) => grantAllows(g, request));
  return grant ? { allowed: true, by: "grant", grantId: grant.grantId } : refused;
}

/** The whole decision: explicit Deny, then policies, then grants (see the top of this file). */
export function decide(query: AccessQuery, grants: readonly Grant[] = []): Decision {
  const { decision, grantsMayAllow } = decidePolicies(query);
  return grantsMayAllow ? decideWithGrants(query, decision, grants) : decision;
}

function callerPolicies(query: AccessQuery): { deny: boolean; allow: boolean } {
  const p = query.principal;
  let allow = p.type === "Root";
  for (const policy of p.policies) {
    const resource = query.key?.arn ?? query.resource;
    const r = evaluatePolicy(policy, p, query.action, resource, query.conditions);
    if (r.deny) return { deny: true, allow: false };
    if (r.allow !== undefined) allow = true;
  }
  return { deny: false, allow };
}

/** AWS's AccessDeniedException text for a refused decision. */
export function accessDeniedMessage(
  principal: Principal,
  action: string,
  resource: string,
  reason: string,
): string {
  return `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${resource} ${reason}`;
}
