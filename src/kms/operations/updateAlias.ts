import type { UpdateAliasRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { authorizeKey, authorizeResource } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { aliasTarget, checkAliasName, keyKind } from "./shared/aliasRules.js";

/** Authorized on the alias ARN, the current key and the new key (see shared/aliasRules.ts). */
export const updateAlias = defineOperation<
  WithRequired<UpdateAliasRequest, "AliasName" | "TargetKeyId">,
  object
>(async (ctx, input) => {
  checkAliasName(input.AliasName);
  await authorizeResource(ctx, ctx.service.aliasArn(input.AliasName));
  const store = ctx.service.store;
  const alias = await store.getAlias(input.AliasName);
  if (!alias)
    throw kmsError(
      "NotFoundException",
      `Alias ${ctx.service.aliasArn(input.AliasName)} is not found.`,
    );
  const current = await store.getKey(alias.targetKeyId);
  if (current) await authorizeKey(ctx, current);
  const key = await aliasTarget(ctx, input.TargetKeyId);
  if (current && (keyKind(current) !== keyKind(key) || current.keyUsage !== key.keyUsage)) {
    throw kmsError(
      "ValidationException",
      `${input.AliasName} points to a ${keyKind(current)} key with usage ${current.keyUsage}; the new target must be of the same kind and usage, but ${key.arn} is a ${keyKind(key)} key with usage ${key.keyUsage}.`,
    );
  }
  if (!(await store.updateAlias(input.AliasName, key.keyId, ctx.service.clock.now().getTime()))) {
    throw kmsError(
      "NotFoundException",
      `Alias ${ctx.service.aliasArn(input.AliasName)} is not found.`,
    );
  }
  return {};
});
