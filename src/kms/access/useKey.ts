/**
 * How operations reach keys: every key an operation touches goes through
 * `useKey`, so it is recorded for the audit and authorized for the operation's
 * action (`kms:<Operation>`, or an explicit one such as kms:ReEncryptFrom) by the
 * request's authorizer. Operations that touch no key call `authorizeAction`.
 */
import { resolveKey, type ResolveOptions } from "../keys/resolveKey.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import type { RequestContext } from "../request.js";

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
  await ctx.authorizer.authorize(ctx, { action: action ?? `kms:${ctx.operation}`, key });
}

/**
 * An action on a resource that is not a key (an alias: AWS authorizes alias operations on
 * the alias ARN and on the keys involved), recorded for the audit like a key.
 */
export async function authorizeResource(
  ctx: RequestContext,
  resource: string,
  action = `kms:${ctx.operation}`,
): Promise<void> {
  if (!ctx.resources.includes(resource)) ctx.resources.push(resource);
  await ctx.authorizer.authorize(ctx, { action, resource });
}

export async function authorizeAction(
  ctx: RequestContext,
  action = `kms:${ctx.operation}`,
): Promise<void> {
  await ctx.authorizer.authorize(ctx, { action });
}

/**
 * PutKeyPolicy's and CreateKey's lockout safety check, unless the caller bypasses it:
 * the caller must still be allowed kms:PutKeyPolicy under the new policy.
 */
export async function checkPolicyLockout(
  ctx: RequestContext,
  policyText: string,
  key: { readonly keyId: string; readonly arn: string },
): Promise<void> {
  if (ctx.input?.["BypassPolicyLockoutSafetyCheck"] === true) return;
  await ctx.authorizer.checkPolicyLockout(ctx, policyText, key);
}
