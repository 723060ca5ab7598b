/**
 * Grants: what one grant allows. A grant lets its grantee perform its operations on
 * one key, never more: the encryption-context constraints apply to every operation
 * that takes an encryption context (keys compared case-insensitively, values
 * case-sensitively, as AWS does; one view of the context shared with the policies,
 * see encryptionContext.ts), and a grant that includes CreateGrant only lets
 * the grantee create grants that are no wider than itself.
 */
import {
  canonicalContext,
  includesPairs,
  samePairs,
  type EncryptionContextMap,
} from "./encryptionContext.js";
import { GRANT_OPERATIONS } from "./grantOperations.js";

export type { EncryptionContextMap };

/** Grant operations that take an encryption context (the only ones constraints restrict). */
export const CONTEXT_OPERATIONS: ReadonlySet<string> = new Set([
  "Decrypt",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "ReEncryptFrom",
  "ReEncryptTo",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
]);

export interface GrantConstraints {
  readonly EncryptionContextEquals?: EncryptionContextMap;
  readonly EncryptionContextSubset?: EncryptionContextMap;
}

export interface Grant {
  readonly grantId: string;
  readonly keyId: string;
  readonly name?: string;
  readonly granteePrincipal: string;
  readonly retiringPrincipal?: string;
  readonly issuingAccount: string;
  readonly operations: readonly string[];
  readonly constraints?: GrantConstraints;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

const grantOps: ReadonlySet<string> = new Set(GRANT_OPERATIONS);

/** The grant operation an IAM action corresponds to ("kms:Encrypt" → "Encrypt"), if any. */
export function grantOperationOf(action: string): string | undefined {
  if (!action.startsWith("kms:")) return undefined;
  const op = action.slice(4);
  return grantOps.has(op) ? op : undefined;
}

/** Whether a request's encryption context satisfies a grant's constraints (see encryptionContext.ts). */
export function constraintsAllow(
  constraints: GrantConstraints | undefined,
  context: EncryptionContextMap | undefined,
): boolean {
  if (!constraints) return true;
  const { EncryptionContextEquals: eq, EncryptionContextSubset: sub } = constraints;
  const ctx = canonicalContext(context);
  if (eq !== undefined && !samePairs(ctx, canonicalContext(eq))) return false;
  if (sub !== undefined && !includesPairs(ctx, canonicalContext(sub))) return false;
  return true;
}

/**
 * Whether a child grant's constraints are equally strict or stricter than its
 * parent's: every encryption context the child accepts, the parent accepts too.
 */
export function constraintsNoWider(
  parent: GrantConstraints | undefined,
  child: GrantConstraints | undefined,
): boolean {
  if (!parent || (!parent.EncryptionContextEquals && !parent.EncryptionContextSubset)) return true;
  if (!child) return false;
  const childEq = child.EncryptionContextEquals;
  const childSub = child.EncryptionContextSubset;
  if (childEq !== undefined) {
    // The child accepts exactly childEq (if it also passes its own subset rule).
    if (
      childSub !== undefined &&
      !includesPairs(canonicalContext(childEq), canonicalContext(childSub))
    )
      return true;
    return constraintsAllow(parent, childEq);
  }
  if (childSub === undefined) return false;
  // The child accepts every superset of childSub; the parent must accept them all.
  if (parent.EncryptionContextEquals !== undefined) return false;
  return includesPairs(
    canonicalContext(childSub),
    canonicalContext(parent.EncryptionContextSubset),
  );
}

/** What a request asks a grant for. */
export interface GrantRequest {
  readonly keyId: string;
  /** IAM action, e.g. kms:Encrypt. */
  readonly action: string;
  /** The caller's principal ARN, and the role ARN for an assumed-role session. */
  readonly principalArns: readonly string[];
  /** The encryption context the action uses (ReEncryptFrom: the source context). */
  readonly encryptionContext?: EncryptionContextMap | undefined;
  /** For kms:CreateGrant: the grant being created. */
  readonly childGrant?: {
    readonly operations: readonly string[];
    readonly constraints?: GrantConstraints;
  };
}

/** Whether `grant` allows `request`. */
export function grantAllows(grant: Grant, request: GrantRequest): boolean {
  if (grant.keyId !== request.keyId) return false;
  if (!request.principalArns.includes(grant.granteePrincipal)) return false;
  const op = grantOperationOf(request.action);
  if (op === undefined || !grant.operations.includes(op)) return false;
  if (CONTEXT_OPERATIONS.has(op))
    return constraintsAllow(grant.constraints, request.encryptionContext);
  if (op === "CreateGrant") {
    const child = request.childGrant;
    if (!child) return false;
    return (
      child.operations.every((o) => grant.operations.includes(o)) &&
      constraintsNoWider(grant.constraints, child.constraints)
    );
  }
  return true;
}
