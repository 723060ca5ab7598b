/**
 * How operations reach keys: every key an operation touches goes through
 * `useKey`, so it is recorded for the audit and authorized for the operation's
 * action (`kms:<Operation>`, or an explicit one such as kms:ReEncryptFrom).
 * Operations that touch no key call `authorizeAction`.
 */
import { resolveKey, type ResolveOptions } from "../keys/resolveKey.js";
import type { KeyRecord } from "../store/keyStore.js";
import type { RequestContext } from "./operation.js";

export interface AccessRequest {
  /** IAM action, e.g. "kms:Encrypt". */
  readonly action: string;
  /** The key acted on; absent for account-level actions (CreateKey, ListKeys, ...). */
  readonly key?: KeyRecord;
}

/** Decides whether the caller of `ctx` may perform `request`; throws AccessDeniedException if not. */
export interface Authorizer {
  authorize(ctx: RequestContext, request: AccessRequest): Promise<void>;
}

/**
 * The policy until key policies and grants are enforced: every principal in the
 * credentials file is an administrator of the account.
 */
export const credentialHoldersAreAdministrators: Authorizer = {
  async authorize() {},
};

export interface UseKeyOptions extends ResolveOptions {
  /** IAM action when it is not kms:<Operation>. */
  readonly action?: string;
}

export async function useKey(
  ctx: RequestContext,
  id: string,
  options: UseKeyOptions,
): Promise<KeyRecord> {
  const key = await resolveKey(ctx.service, id, options);
  await authorizeKey(ctx, key, options.action);
  return key;
}

export async function authorizeKey(
  ctx: RequestContext,
  key: KeyRecord,
  action?: string,
): Promise<void> {
  if (!ctx.resources.includes(key.arn)) ctx.resources.push(key.arn);
  await ctx.service.authorizer.authorize(ctx, { action: action ?? `kms:${ctx.operation}`, key });
}

export async function authorizeAction(
  ctx: RequestContext,
  action = `kms:${ctx.operation}`,
): Promise<void> {
  await ctx.service.authorizer.authorize(ctx, { action });
}
