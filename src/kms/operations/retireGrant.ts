import type { RetireGrantRequest } from "@aws-sdk/client-kms";
import { decodeGrantToken } from "../authz/grantTokens.js";
import { principalArns } from "../authz/principal.js";
import { kmsError } from "../errors.js";
import { keyIdOf } from "../keys/resolveKey.js";
import { checkGrantId } from "./shared/grantRules.js";
import { defineOperation, dryRun } from "./operation.js";

/**
 * RetireGrant, by GrantToken or by KeyId + GrantId. As in AWS, the grant decides who
 * may retire it: its retiring principal, its grantee when the grant includes
 * RetireGrant, or the root of the account that issued it. Policies are not consulted.
 */
export const retireGrant = defineOperation<RetireGrantRequest, object>(async (ctx, input) => {
  let grantId: string | undefined;
  if (input.GrantToken !== undefined) {
    grantId = decodeGrantToken(input.GrantToken);
    if (grantId === undefined)
      throw kmsError(
        "InvalidGrantTokenException",
        "The grant token is not valid. Pass the GrantToken that CreateGrant returned, unchanged.",
      );
  }
  if (input.GrantId !== undefined) {
    checkGrantId(input.GrantId);
    if (grantId !== undefined && grantId !== input.GrantId)
      throw kmsError("ValidationException", "GrantId does not match the grant of GrantToken.");
    grantId = input.GrantId;
  }
  if (grantId === undefined || (input.GrantToken === undefined && input.KeyId === undefined))
    throw kmsError("ValidationException", "Grant token OR (grant ID, key ID) must be specified");
  const keyId = input.KeyId !== undefined ? keyIdOf(ctx.service, input.KeyId) : undefined;
  const store = ctx.service.store;
  const grant = await store.getGrant(grantId);
  if (!grant || (keyId !== undefined && grant.keyId !== keyId))
    throw kmsError("NotFoundException", `Grant ${grantId} does not exist.`);
  const keyArn = ctx.service.keyArn(grant.keyId);
  ctx.resources.push(keyArn);
  const caller = ctx.caller.identity;
  const arns = principalArns(caller);
  const allowed =
    (grant.retiringPrincipal !== undefined && arns.includes(grant.retiringPrincipal)) ||
    (arns.includes(grant.granteePrincipal) && grant.operations.includes("RetireGrant")) ||
    (caller.type === "Root" && caller.account === grant.issuingAccount);
  if (!allowed)
    throw kmsError(
      "AccessDeniedException",
      `User: ${caller.arn} is not authorized to perform: kms:RetireGrant on resource: ${keyArn} because it is neither the grant's retiring principal nor a grantee whose grant includes RetireGrant`,
    );
  dryRun(input);
  if (!(await store.deleteGrant(grantId)))
    throw kmsError("NotFoundException", `Grant ${grantId} does not exist.`);
  return {};
});
