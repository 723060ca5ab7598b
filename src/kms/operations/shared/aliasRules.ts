/**
 * The rules of CreateAlias, UpdateAlias and DeleteAlias.
 *
 * AWS authorizes alias operations on the alias and on every key they affect
 * (developer guide, "Controlling access to aliases"): CreateAlias needs kms:CreateAlias
 * on the alias ARN and on the target key; UpdateAlias kms:UpdateAlias on the alias, the
 * current key and the new key; DeleteAlias kms:DeleteAlias on the alias and its key. The
 * alias ARN can only be allowed by caller policies (`Resource: arn:aws:kms:*:*:alias/app*`).
 * Without the alias check, a caller allowed only CreateKey could point `alias/payments`
 * at a key of its own and read what others encrypt "under" the alias (issue 12, item 1).
 */
import { kmsError } from "../../errors.js";
import { assertNotPendingDeletion } from "../../keys/keyState.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";

/** The model's AliasNameType pattern (it admits ':', which AWS then refuses with its own message). */
const ALIAS_NAME = /^[a-zA-Z0-9:/_-]+$/;

/** AWS's alias rules: the alias/ prefix, its character set, and the reserved alias/aws/ space. */
export function checkAliasName(name: string): void {
  if (!name.startsWith("alias/")) {
    throw kmsError(
      "ValidationException",
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  // AWS answers the reserved alias/aws/ space with a bare NotAuthorizedException (no message).
  if (name.startsWith("alias/aws/")) throw kmsError("NotAuthorizedException", "");
  if (name.includes(":"))
    throw kmsError("ValidationException", `${name} contains invalid characters for an alias`);
  if (!ALIAS_NAME.test(name)) {
    throw kmsError(
      "ValidationException",
      `1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$`,
    );
  }
}

/** The key an alias may point at: named by id or ARN, and not pending deletion. */
export async function aliasTarget(ctx: RequestContext, targetKeyId: string): Promise<KeyRecord> {
  if (targetKeyId.startsWith("alias/") || /^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(targetKeyId)) {
    throw kmsError("ValidationException", "Aliases must refer to keys. Not aliases");
  }
  const key = await useKey(ctx, targetKeyId, { aliases: false });
  assertNotPendingDeletion(key);
  return key;
}

/** Symmetric, asymmetric and HMAC keys are different kinds; an alias may only move within one. */
export const keyKind = (key: KeyRecord) =>
  key.keySpec === "SYMMETRIC_DEFAULT"
    ? "symmetric"
    : key.keySpec.startsWith("HMAC_")
      ? "HMAC"
      : "asymmetric";
