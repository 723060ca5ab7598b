/**
 * CreateAlias, UpdateAlias, DeleteAlias and ListAliases.
 *
 * AWS authorizes alias operations on the alias and on every key they affect
 * (developer guide, "Controlling access to aliases"): CreateAlias needs kms:CreateAlias
 * on the alias ARN and on the target key; UpdateAlias kms:UpdateAlias on the alias, the
 * current key and the new key; DeleteAlias kms:DeleteAlias on the alias and its key. The
 * alias ARN can only be allowed by caller policies (`Resource: arn:aws:kms:*:*:alias/app*`).
 * Without the alias check, a caller allowed only CreateKey could point `alias/payments`
 * at a key of its own and read what others encrypt "under" the alias (issue 12, item 1).
 */
import type {
  CreateAliasRequest,
  DeleteAliasRequest,
  ListAliasesRequest,
  ListAliasesResponse,
  UpdateAliasRequest,
} from "@aws-sdk/client-kms";
import { kmsError } from "../errors.js";
import { assertNotPendingDeletion } from "../keys/keyState.js";
import { authorizeAction, authorizeKey, authorizeResource, useKey } from "../access/useKey.js";
import { StoreConflictError } from "../store/keyStore.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { defineOperation, type WithRequired } from "./operation.js";
import type { RequestContext } from "../request.js";
import { decodeMarker, pageEnd } from "./pagination.js";

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]+$/;

/** AWS's alias rules: the alias/ prefix, its character set, and the reserved alias/aws/ space. */
function checkAliasName(name: string): void {
  if (!name.startsWith("alias/")) {
    throw kmsError(
      "ValidationException",
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  if (name.startsWith("alias/aws/"))
    throw kmsError(
      "NotAuthorizedException",
      "Cannot create, update or delete an alias with the reserved prefix 'alias/aws/'.",
    );
  if (!ALIAS_NAME.test(name)) {
    throw kmsError(
      "ValidationException",
      `1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`,
    );
  }
}

/** The key an alias may point at: named by id or ARN, and not pending deletion. */
async function aliasTarget(ctx: RequestContext, targetKeyId: string): Promise<KeyRecord> {
  if (targetKeyId.startsWith("alias/") || /^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(targetKeyId)) {
    throw kmsError("ValidationException", "Aliases must refer to keys. Not aliases");
  }
  const key = await useKey(ctx, targetKeyId, { aliases: false });
  assertNotPendingDeletion(key);
  return key;
}

/** Symmetric, asymmetric and HMAC keys are different kinds; an alias may only move within one. */
const keyKind = (key: KeyRecord) =>
  key.keySpec === "SYMMETRIC_DEFAULT"
    ? "symmetric"
    : key.keySpec.startsWith("HMAC_")
      ? "HMAC"
      : "asymmetric";

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

export const listAliases = defineOperation<ListAliasesRequest, ListAliasesResponse>(
  async (ctx, input) => {
    let targetKeyId: string | undefined;
    if (input.KeyId !== undefined) {
      targetKeyId = (await useKey(ctx, input.KeyId, { aliases: false })).keyId;
    } else {
      await authorizeAction(ctx);
    }
    const page = await ctx.service.store.listAliases(
      input.Limit ?? 50,
      decodeMarker(input.Marker),
      targetKeyId,
    );
    return {
      Aliases: page.items.map((a) => ({
        AliasName: a.name,
        AliasArn: ctx.service.aliasArn(a.name),
        TargetKeyId: a.targetKeyId,
        CreationDate: new Date(a.createdAt),
        LastUpdatedDate: new Date(a.updatedAt),
      })),
      ...pageEnd(page.next),
    };
  },
);
