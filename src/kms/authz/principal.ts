/**
 * The caller as policies see it: its ARN, account, kind, tags and attached
 * (identity-based) policies.
 *
 *   arn:aws:iam::<account>:root                    the account itself (all IAM permissions)
 *   arn:aws:iam::<account>:user/<path/>name        an IAM-style user (credentials file)
 *   arn:aws:iam::<account>:role/<path/>name        a role
 *   arn:aws:sts::<account>:assumed-role/<role>/<session>   a session of a role
 *
 * A Principal element naming a role matches every session of that role.
 */
import type { CompiledPolicy } from "./policy.js";

export type PrincipalType = "Root" | "IAMUser" | "Role" | "AssumedRole";

export interface Principal {
  readonly arn: string;
  readonly account: string;
  readonly type: PrincipalType;
  /** For an assumed-role session: the role's ARN (aws:PrincipalArn). */
  readonly roleArn?: string;
  /** aws:PrincipalTag/<key> values. */
  readonly tags: Readonly<Record<string, string>>;
  /** Caller ("IAM") policies attached to the principal. */
  readonly policies: readonly CompiledPolicy[];
}

const ARN = /^arn:[a-z-]+:(iam|sts)::(\d{12}):(.+)$/;

/** Builds a Principal from its ARN; `roleArn` is needed for sessions whose role has a path. */
export function principalFromArn(
  arn: string,
  extra: {
    readonly tags?: Readonly<Record<string, string>>;
    readonly policies?: readonly CompiledPolicy[];
    readonly roleArn?: string;
  } = {},
): Principal {
  const m = ARN.exec(arn);
  const account = m?.[2] ?? "";
  const resource = m?.[3] ?? "";
  let type: PrincipalType = "IAMUser";
  let roleArn = extra.roleArn;
  if (resource === "root") type = "Root";
  else if (resource.startsWith("role/")) type = "Role";
  else if (resource.startsWith("assumed-role/")) {
    type = "AssumedRole";
    if (roleArn === undefined) {
      const role = resource.split("/")[1] ?? "";
      roleArn = `arn:aws:iam::${account}:role/${role}`;
    }
  }
  return {
    arn,
    account,
    type,
    ...(roleArn !== undefined && { roleArn }),
    tags: extra.tags ?? {},
    policies: extra.policies ?? [],
  };
}

/** The ARNs a Principal element or a grantee may name to mean this caller. */
export function principalArns(p: Principal): readonly string[] {
  return p.roleArn !== undefined && p.roleArn !== p.arn ? [p.arn, p.roleArn] : [p.arn];
}

/** aws:PrincipalArn: the role for sessions, the caller's ARN otherwise. */
export const principalArnKey = (p: Principal): string => p.roleArn ?? p.arn;
