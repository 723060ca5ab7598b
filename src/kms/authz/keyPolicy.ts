/**
 * Key policy documents: the default policy CreateKey attaches, and the structural
 * checks every stored policy passes (full evaluation comes with access control).
 */
import { kmsError } from "../errors.js";

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

const malformed = (why: string) => kmsError("MalformedPolicyDocumentException", why);

/** Checks that a policy is a JSON object with a Statement list whose entries have an Effect; throws MalformedPolicyDocumentException. */
export function checkPolicyDocument(text: string): void {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw malformed(`Policy is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof document !== "object" || document === null || Array.isArray(document))
    throw malformed("Policy must be a JSON object.");
  const statement = (document as Record<string, unknown>)["Statement"];
  const statements = Array.isArray(statement)
    ? statement
    : statement === undefined
      ? undefined
      : [statement];
  if (!statements || statements.length === 0)
    throw malformed("Policy must contain at least one Statement.");
  statements.forEach((s, i) => {
    if (typeof s !== "object" || s === null)
      throw malformed(`Statement ${i + 1} must be an object.`);
    const effect = (s as Record<string, unknown>)["Effect"];
    if (effect !== "Allow" && effect !== "Deny")
      throw malformed(`Statement ${i + 1} must have an Effect of "Allow" or "Deny".`);
  });
}
