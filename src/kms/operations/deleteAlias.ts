import type { DeleteAliasRequest } from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { authorizeKey, authorizeResource } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { checkAliasName } from "./shared/aliasRules.js";

/** Authorized on the alias ARN and on its key (see shared/aliasRules.ts). */
export const deleteAlias = defineOperation<WithRequired<DeleteAliasRequest, "AliasName">, object>(
  async (ctx, input) => {
    checkAliasName(input.AliasName);
    await authorizeResource(ctx, ctx.service.aliasArn(input.AliasName));
    const alias = await ctx.service.store.getAlias(input.AliasName);
    const target = alias && (await ctx.service.store.getKey(alias.targetKeyId));
    if (target) await authorizeKey(ctx, target);
    if (!alias || !(await ctx.service.store.deleteAlias(input.AliasName))) {
      throw kmsError(
        "NotFoundException",
        `Alias ${ctx.service.aliasArn(input.AliasName)} is not found.`,
      );
    }
    return {};
  },
);
