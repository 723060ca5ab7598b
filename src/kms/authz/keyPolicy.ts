/**
 * Key policy documents: the default policy CreateKey attaches, validation of every
 * policy stored (MalformedPolicyDocumentException with what to fix), and the
 * caller policy of administrators.
 */
import { kmsError } from "../errors.js";
import { checkKeyPolicySize } from "../limits.js";
import { compilePolicy, PolicyError, type CompiledPolicy, type PolicyKind } from "./policy.js";

/** AWS's default key policy: the account may do everything, which delegates to caller policies. */
export function defaultKeyPolicy(account: string): string {
  return JSON.stringify(
    {
      Version: "2012-10-17",
      Id: "key-default-1",
      Statement: [
        {
          Sid: "Enable IAM User Permissions",
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${account}:root` },
          Action: "kms:*",
          Resource: "*",
        },
      ],
    },
    null,
    2,
  );
}

/** Compiles a policy (cached by text); a malformed one is MalformedPolicyDocumentException. */
export function compiledPolicy(text: string, kind: PolicyKind = "key"): CompiledPolicy {
  try {
    return compilePolicy(text, kind);
  } catch (err) {
    if (err instanceof PolicyError) throw kmsError("MalformedPolicyDocumentException", err.message);
    throw err;
  }
}

/** A key has exactly one policy, named "default". */
export function checkPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== "default") {
    throw kmsError(
      "NotFoundException",
      `No such policy: '${name}'. A KMS key has one key policy, named 'default'.`,
    );
  }
}

/**
 * Validates a key policy: LimitExceededException over 32 KB (checked before parsing),
 * else MalformedPolicyDocumentException naming the statement and field to fix.
 */
export function checkPolicyDocument(text: string): void {
  checkKeyPolicySize(text);
  compiledPolicy(text, "key");
}

/**
 * The caller policy of the admin credential generated on first start (a credential
 * that lists no `policies` is allowed nothing): every KMS action on every key whose
 * key policy lets the account's caller policies decide (AWS's default key policy does).
 */
export const ADMINISTRATOR_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Sid: "KeyhavenAdministrator", Effect: "Allow", Action: "kms:*", Resource: "*" }],
});
