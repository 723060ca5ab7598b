import type { CreateAliasRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { authorizeResource } from "../access/useKey.js";
import { StoreConflictError } from "../store/keyStore.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { aliasTarget, checkAliasName } from "./shared/aliasRules.js";

/** Authorized on the alias ARN and on the target key (see shared/aliasRules.ts). */
export const createAlias = defineOperation<
  WithRequired<CreateAliasRequest, "AliasName" | "TargetKeyId">,
  object
>(async (ctx, input) => {
  checkAliasName(input.AliasName);
  await authorizeResource(ctx, ctx.service.aliasArn(input.AliasName));
  const key = await aliasTarget(ctx, input.TargetKeyId);
  const now = ctx.service.clock.now().getTime();
  try {
    await ctx.service.store.createAlias({
      name: input.AliasName,
      targetKeyId: key.keyId,
      createdAt: now,
      updatedAt: now,
    });
  } catch (err) {
    if (err instanceof StoreConflictError) {
      throw kmsError(
        "AlreadyExistsException",
        `An alias with the name ${ctx.service.aliasArn(input.AliasName)} already exists`,
      );
    }
    throw err;
  }
  return {};
});
