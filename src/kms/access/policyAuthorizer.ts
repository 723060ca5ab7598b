/**
 * AWS KMS's authorization rule (see authz/evaluate.ts): key policy, the caller's
 * policies and the key's grants, explicit Deny first, default deny. The caller is
 * `ctx.caller.identity`, resolved when its credential was loaded.
 */
import { compiledPolicy } from "../authz/keyPolicy.js";
import type { CompiledPolicy } from "../authz/policy.js";
import {
  accessDeniedMessage,
  decide,
  decidePolicies,
  decideWithGrants,
  type AccessQuery,
} from "../authz/evaluate.js";
import { decodeGrantToken } from "../authz/grantTokens.js";
import type { EncryptionContextMap, GrantConstraints } from "../authz/grants.js";
import type { Principal } from "../authz/principal.js";
import { requestConditions, type RequestFacts } from "../authz/requestContext.js";
import { kmsError } from "../errors.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import type { KeyStore } from "../store/keyStore.js";
import type { AccessRequest, Authorizer, RequestContext } from "../request.js";

const isMap = (v: unknown): v is EncryptionContextMap =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The encryption context an action uses: ReEncryptFrom the source's, ReEncryptTo the destination's. */
function encryptionContextFor(
  action: string,
  input: Readonly<Record<string, unknown>>,
): EncryptionContextMap | undefined {
  const v =
    action === "kms:ReEncryptFrom"
      ? input["SourceEncryptionContext"]
      : action === "kms:ReEncryptTo"
        ? input["DestinationEncryptionContext"]
        : input["EncryptionContext"];
  return isMap(v) ? v : undefined;
}

const ALIAS_ARN = /^arn:[^:]+:kms:[^:]*:[^:]*:(alias\/.+)$/;

function requestAlias(
  action: string,
  input: Readonly<Record<string, unknown>>,
): string | undefined {
  const id =
    action === "kms:ReEncryptTo"
      ? input["DestinationKeyId"]
      : action === "kms:ReEncryptFrom"
        ? input["SourceKeyId"]
        : input["KeyId"];
  if (typeof id !== "string") return undefined;
  if (id.startsWith("alias/")) return id;
  return ALIAS_ARN.exec(id)?.[1];
}

function tagFacts(input: Readonly<Record<string, unknown>>) {
  const tags = input["Tags"];
  if (Array.isArray(tags)) {
    // A Map: a tag key named `__proto__` must count like any other (aws:TagKeys, aws:RequestTag).
    const requestTags = new Map<string, string>();
    for (const t of tags as { TagKey?: unknown; TagValue?: unknown }[])
      if (typeof t.TagKey === "string")
        requestTags.set(t.TagKey, typeof t.TagValue === "string" ? t.TagValue : "");
    return { requestTags, tagKeys: [...requestTags.keys()] };
  }
  const keys = input["TagKeys"];
  return Array.isArray(keys) ? { tagKeys: keys.filter((k) => typeof k === "string") } : {};
}

function extraFacts(
  input: Readonly<Record<string, unknown>>,
  conditions: RequestContext["conditions"],
): Map<string, readonly string[]> {
  const extra = new Map<string, readonly string[]>(conditions);
  const put = (key: string, v: unknown) => {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean")
      extra.set(key, [String(v)]);
  };
  put("kms:bypasspolicylockoutsafetycheck", input["BypassPolicyLockoutSafetyCheck"] ?? false);
  put("kms:encryptionalgorithm", input["EncryptionAlgorithm"]);
  put("kms:signingalgorithm", input["SigningAlgorithm"]);
  put("kms:macalgorithm", input["MacAlgorithm"]);
  put("kms:messagetype", input["MessageType"]);
  put("kms:datakeypairspec", input["KeyPairSpec"]);
  put("kms:rotationperiodindays", input["RotationPeriodInDays"]);
  put("kms:schedulekeydeletionpendingwindowindays", input["PendingWindowInDays"]);
  put("kms:expirationmodel", input["ExpirationModel"]);
  put("kms:wrappingalgorithm", input["WrappingAlgorithm"]);
  put("kms:wrappingkeyspec", input["WrappingKeySpec"]);
  const constraints = input["Constraints"] as GrantConstraints | undefined;
  if (constraints) {
    const types = Object.keys(constraints).filter(
      (k) => k === "EncryptionContextEquals" || k === "EncryptionContextSubset",
    );
    if (types.length > 0) extra.set("kms:grantconstrainttype", types);
  }
  return extra;
}

/** Grant tokens must at least be tokens Keyhaven issued (the grants they name come from the store). */
function checkGrantTokens(input: Readonly<Record<string, unknown>>): void {
  const tokens = input["GrantTokens"];
  if (!Array.isArray(tokens)) return;
  for (const t of tokens)
    if (typeof t !== "string" || decodeGrantToken(t) === undefined)
      throw kmsError(
        "InvalidGrantTokenException",
        "A grant token is not valid. Pass the GrantToken that CreateGrant returned, unchanged.",
      );
}

/**
 * Alias names of a key for kms:ResourceAliases, read at most every few seconds per key:
 * AWS documents that alias changes may take a while to affect authorization.
 */
const ALIAS_TTL_MS = 5_000;

/**
 * The authorizer `serve` uses. Its caches live as long as it does (one per key
 * service): the compiled policy of each key, and the alias names of each key.
 */
export function policyAuthorizer(): Authorizer {
  /**
   * The compiled policy of a key, remembered per key: comparing the stored text with the
   * remembered one (usually a short memcmp) is cheaper than hashing a fresh copy of a
   * large policy for the text-keyed cache on every request.
   */
  const keyPolicies = new Map<string, { text: string; policy: CompiledPolicy }>();
  const aliasCaches = new WeakMap<KeyStore, Map<string, { at: number; names: string[] }>>();

  function keyPolicy(key: KeyRecord): CompiledPolicy {
    const known = keyPolicies.get(key.arn);
    if (known && known.text === key.policy) return known.policy;
    const policy = compiledPolicy(key.policy, "key");
    if (keyPolicies.size >= 10_000) keyPolicies.clear();
    keyPolicies.set(key.arn, { text: key.policy, policy });
    return policy;
  }

  async function keyAliases(ctx: RequestContext, key: KeyRecord): Promise<string[]> {
    const store = ctx.service.store;
    let cache = aliasCaches.get(store);
    if (!cache) {
      cache = new Map();
      aliasCaches.set(store, cache);
    }
    const now = ctx.service.clock.now().getTime();
    const hit = cache.get(key.keyId);
    if (hit && now - hit.at < ALIAS_TTL_MS && now >= hit.at) return hit.names;
    const names = (await store.aliasesOf(key.keyId)).map((a) => a.name);
    if (cache.size >= 10_000) cache.clear();
    cache.set(key.keyId, { at: now, names });
    return names;
  }

  /** Builds the facts of `request` for the decision. */
  async function accessQuery(
    ctx: RequestContext,
    request: AccessRequest,
    principal: Principal,
  ): Promise<AccessQuery> {
    const input = ctx.input ?? {};
    const { action, key } = request;
    const service = ctx.service;
    const policy = key ? keyPolicy(key) : undefined;
    const needsAliases =
      key !== undefined &&
      (policy!.conditionKeys.has("kms:resourcealiases") ||
        principal.policies.some((p) => p.conditionKeys.has("kms:resourcealiases")));
    const encryptionContext = encryptionContextFor(action, input);
    const alias = requestAlias(action, input);
    const operations = input["Operations"];
    const grantee = input["GranteePrincipal"];
    const retiring = input["RetiringPrincipal"];
    const isCreateGrant = action === "kms:CreateGrant" && Array.isArray(operations);
    const facts: RequestFacts = {
      principal,
      now: service.clock.now(),
      sourceIp: ctx.sourceIp,
      secureTransport: ctx.secureTransport,
      ...(key && {
        key: {
          arn: key.arn,
          keySpec: key.keySpec,
          keyUsage: key.keyUsage,
          origin: key.origin,
          tags: key.tags,
          ...(needsAliases && { aliases: await keyAliases(ctx, key) }),
        },
      }),
      ...(encryptionContext && { encryptionContext }),
      ...(alias !== undefined && { requestAlias: alias }),
      ...tagFacts(input),
      ...(isCreateGrant && {
        grant: {
          operations: operations as string[],
          granteePrincipal: typeof grantee === "string" ? grantee : "",
          ...(typeof retiring === "string" && { retiringPrincipal: retiring }),
        },
      }),
      extra: extraFacts(input, ctx.conditions),
    };
    return {
      principal,
      action,
      ...(request.resource !== undefined && { resource: request.resource }),
      ...(key && {
        key: { keyId: key.keyId, arn: key.arn, account: service.account, policy: policy! },
      }),
      conditions: requestConditions(facts),
      grantRequest: {
        encryptionContext,
        ...(isCreateGrant && {
          childGrant: {
            operations: operations as string[],
            ...(isMap(input["Constraints"]) && {
              constraints: input["Constraints"],
            }),
          },
        }),
      },
    };
  }

  return {
    async authorize(ctx, request) {
      const input = ctx.input ?? {};
      checkGrantTokens(input);
      const principal = ctx.caller.identity;
      const query = await accessQuery(ctx, request, principal);
      const policies = decidePolicies(query);
      const decision =
        policies.grantsMayAllow && request.key
          ? decideWithGrants(
              query,
              policies.decision,
              await ctx.service.store.grantsOf(request.key.keyId),
            )
          : policies.decision;
      if (!decision.allowed)
        throw kmsError(
          "AccessDeniedException",
          accessDeniedMessage(
            principal,
            request.action,
            request.key?.arn ?? request.resource ?? "*",
            decision.reason,
          ),
        );
    },

    async checkPolicyLockout(ctx, policyText, key) {
      const principal = ctx.caller.identity;
      const policy = compiledPolicy(policyText, "key");
      const query = await accessQuery(ctx, { action: "kms:PutKeyPolicy" }, principal);
      const decision = decide(
        Object.assign({}, query, {
          key: { keyId: key.keyId, arn: key.arn, account: ctx.service.account, policy },
        }),
      );
      if (!decision.allowed)
        throw kmsError(
          "MalformedPolicyDocumentException",
          "The new key policy will not allow you to update the key policy in the future.",
        );
    },
  };
}
