/** Shared rules of the grant operations: AWS's checks on grantees, operations and constraints. */
import type { GrantListEntry } from "@aws-sdk/client-kms";
import { canonicalContext } from "../../authz/encryptionContext.js";
import { CONTEXT_OPERATIONS, type GrantConstraints } from "../../authz/grants.js";
import { LIMITS } from "../../limits.js";
import { kmsError } from "../../errors.js";
import type { GrantRecord } from "../../store/keyStore.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import type { RequestContext } from "../../request.js";

const PRINCIPAL = /^arn:aws:(iam|sts)::\d{12}:(root|[\w+=,.@/:-]+)$/;

export function checkPrincipal(value: string, member: string): void {
  if (!PRINCIPAL.test(value))
    throw kmsError(
      "ValidationException",
      `${member} '${value}' is not a valid principal; use an ARN such as arn:aws:iam::111122223333:role/app or arn:aws:iam::111122223333:root.`,
    );
}

/** Which grant operations suit a key, by its usage (AWS rejects the others). */
function operationsFor(key: KeyRecord): ReadonlySet<string> {
  const common = ["CreateGrant", "RetireGrant", "DescribeKey"];
  const symmetric = key.keySpec === "SYMMETRIC_DEFAULT";
  switch (key.keyUsage) {
    case "ENCRYPT_DECRYPT":
      return new Set(
        symmetric
          ? [
              ...common,
              "Encrypt",
              "Decrypt",
              "ReEncryptFrom",
              "ReEncryptTo",
              "GenerateDataKey",
              "GenerateDataKeyWithoutPlaintext",
              "GenerateDataKeyPair",
              "GenerateDataKeyPairWithoutPlaintext",
            ]
          : [...common, "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"],
      );
    case "SIGN_VERIFY":
      return new Set([...common, "Sign", "Verify", "GetPublicKey"]);
    case "GENERATE_VERIFY_MAC":
      return new Set([...common, "GenerateMac", "VerifyMac"]);
    case "KEY_AGREEMENT":
      return new Set([...common, "DeriveSharedSecret", "GetPublicKey"]);
    default:
      return new Set(common);
  }
}

export function checkOperations(key: KeyRecord, operations: readonly string[]): void {
  if (operations.length === 0)
    throw kmsError("ValidationException", "Operations must list at least one grant operation.");
  const allowed = operationsFor(key);
  const bad = operations.filter((o) => !allowed.has(o));
  if (bad.length > 0)
    throw kmsError(
      "ValidationException",
      `Grant operations ${bad.join(", ")} are not valid for ${key.arn}, a ${key.keySpec} key with usage ${key.keyUsage}; valid: ${[...allowed].join(", ")}.`,
    );
}

export function checkConstraints(
  key: KeyRecord,
  operations: readonly string[],
  constraints: GrantConstraints | undefined,
): void {
  if (!constraints) return;
  const maps = [
    ["EncryptionContextEquals", constraints.EncryptionContextEquals],
    ["EncryptionContextSubset", constraints.EncryptionContextSubset],
  ] as const;
  const pairs = LIMITS.grantConstraintPairs.limit;
  const valueLength = LIMITS.grantConstraintValueLength.limit;
  for (const [name, map] of maps) {
    if (map === undefined) continue;
    const entries = Object.entries(map);
    if (entries.length > pairs)
      throw kmsError(
        "ValidationException",
        `${name} may hold at most ${pairs} encryption context pairs; it has ${entries.length}.`,
      );
    for (const [k, v] of entries)
      if (v.length > valueLength)
        throw kmsError(
          "ValidationException",
          `The value of '${k}' in ${name} is longer than ${valueLength} characters.`,
        );
    // Constraint keys compare case-insensitively (encryptionContext.ts): two spellings of a
    // key would make a constraint no request can satisfy.
    const ambiguous = [...canonicalContext(map).ambiguous];
    if (ambiguous.length > 0)
      throw kmsError(
        "ValidationException",
        `${name} names the key '${ambiguous[0]}' twice in different case; grant constraint keys are case-insensitive, so name each key once.`,
      );
  }
  const usesContext = maps.some(([, m]) => m !== undefined && Object.keys(m).length > 0);
  if (usesContext && key.keySpec !== "SYMMETRIC_DEFAULT")
    throw kmsError(
      "ValidationException",
      `Encryption context grant constraints are supported only for symmetric encryption keys; ${key.arn} is ${key.keySpec}.`,
    );
  if (usesContext && !operations.some((o) => CONTEXT_OPERATIONS.has(o) || o === "CreateGrant"))
    throw kmsError(
      "ValidationException",
      "Encryption context grant constraints need at least one grant operation that takes an encryption context.",
    );
}

/** Same grantee, retiring principal, operations (as a set) and constraints. */
export function sameGrant(
  a: GrantRecord,
  b: Omit<GrantRecord, "grantId" | "createdAt" | "issuingAccount">,
): boolean {
  const ops = (g: { operations: readonly string[] }) => [...new Set(g.operations)].sort().join();
  const canon = (c: GrantConstraints | undefined) =>
    JSON.stringify(
      c
        ? [c.EncryptionContextEquals, c.EncryptionContextSubset].map((m) =>
            m ? Object.entries(m).sort() : null,
          )
        : null,
    );
  return (
    a.granteePrincipal === b.granteePrincipal &&
    a.retiringPrincipal === b.retiringPrincipal &&
    ops(a) === ops(b) &&
    canon(a.constraints) === canon(b.constraints)
  );
}

/** A stored grant as ListGrants/ListRetirableGrants return it. */
export function grantListEntry(ctx: RequestContext, g: GrantRecord): GrantListEntry {
  return {
    KeyId: ctx.service.keyArn(g.keyId),
    GrantId: g.grantId,
    ...(g.name !== undefined && { Name: g.name }),
    CreationDate: new Date(g.createdAt),
    GranteePrincipal: g.granteePrincipal,
    ...(g.retiringPrincipal !== undefined && { RetiringPrincipal: g.retiringPrincipal }),
    IssuingAccount: `arn:aws:iam::${g.issuingAccount}:root`,
    Operations: [...g.operations] as GrantListEntry["Operations"],
    ...(g.constraints && { Constraints: g.constraints }),
  };
}

export const GRANT_ID = /^[0-9a-f]{64}$/;

export function checkGrantId(grantId: string): void {
  if (!GRANT_ID.test(grantId))
    throw kmsError(
      "InvalidGrantIdException",
      `'${grantId}' is not a grant id; grant ids are the 64 hexadecimal characters CreateGrant returned.`,
    );
}
