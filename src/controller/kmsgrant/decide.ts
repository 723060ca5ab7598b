/** KmsGrant decisions: the grant's parameters, their fingerprint, and the grantee's principal. */
import { createHash } from "node:crypto";
import type { KmsGrant } from "../../api/v1alpha1/types.js";

export interface GrantParameters {
  readonly keyArn: string;
  readonly granteePrincipal: string;
  readonly operations: string[];
  readonly constraints?: {
    EncryptionContextEquals?: Record<string, string>;
    EncryptionContextSubset?: Record<string, string>;
  };
  readonly retiringPrincipal?: string;
}

/**
 * The principal a ServiceAccount's web-identity session has: the role named after
 * the ServiceAccount, as the key service's STS endpoint issues it.
 */
export function serviceAccountPrincipal(account: string, namespace: string, name: string): string {
  return `arn:aws:sts::${account}:assumed-role/${namespace}/${name}`;
}

export const accountOfArn = (arn: string) => arn.split(":")[4] ?? "";

export function grantParameters(grant: KmsGrant, keyArn: string): GrantParameters {
  const s = grant.spec;
  const grantee =
    s.granteePrincipal ??
    serviceAccountPrincipal(
      accountOfArn(keyArn),
      s.serviceAccountRef?.namespace ?? grant.metadata.namespace,
      s.serviceAccountRef?.name ?? "",
    );
  const c = s.constraints;
  const constraints =
    c && (c.encryptionContextEquals || c.encryptionContextSubset)
      ? {
          ...(c.encryptionContextEquals && { EncryptionContextEquals: c.encryptionContextEquals }),
          ...(c.encryptionContextSubset && { EncryptionContextSubset: c.encryptionContextSubset }),
        }
      : undefined;
  return {
    keyArn,
    granteePrincipal: grantee,
    operations: [...new Set(s.operations)].sort(),
    ...(constraints && { constraints }),
    ...(s.retiringPrincipal && { retiringPrincipal: s.retiringPrincipal }),
  };
}

/** A digest of everything that defines the grant; another digest means revoke and recreate. */
export function fingerprint(p: GrantParameters): string {
  const sorted = (m?: Record<string, string>) =>
    m ? Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b))) : null;
  const canonical = JSON.stringify([
    p.keyArn,
    p.granteePrincipal,
    p.operations,
    sorted(p.constraints?.EncryptionContextEquals),
    sorted(p.constraints?.EncryptionContextSubset),
    p.retiringPrincipal ?? null,
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** The grant Name: idempotent creation in the key service, and how a retry finds a grant it made. */
export const grantName = (uid: string, fp: string) => `keyhaven-${uid}-${fp}`;
