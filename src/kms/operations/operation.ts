/**
 * The shape of one KMS operation: validate → authorize → act → audit. Input comes
 * already decoded and checked against the service model (see protocol/model.ts).
 */
import { kmsError, validationError } from "../errors.js";
import type { RequestContext } from "../request.js";

/** An SDK request type with the members the model marks required made non-optional. */
export type WithRequired<T, K extends keyof T> = T & { [P in K]-?: NonNullable<T[P]> };

export type OperationHandler = (
  ctx: RequestContext,
  input: Record<string, unknown>,
) => Promise<object>;

/** Types a handler against the SDK's request and response shapes. */
export const defineOperation = <I, O extends object>(
  handler: (ctx: RequestContext, input: I) => Promise<O>,
): OperationHandler => handler as unknown as OperationHandler;

/** Operations with a DryRun flag call this once every check has passed, before acting. */
export function dryRun(input: { DryRun?: boolean | undefined }): void {
  if (input.DryRun)
    throw kmsError(
      "DryRunOperationException",
      "The request would have succeeded, but the DryRun option is set.",
    );
}

/**
 * A member the vendored model leaves optional but the operation needs (Decrypt's and
 * ReEncrypt's CiphertextBlob): absent is AWS's "must not be null" ValidationException.
 */
export function required<T>(value: T | undefined, wireName: string): T {
  if (value === undefined)
    throw validationError([
      `Value null at '${wireName}' failed to satisfy constraint: Member must not be null`,
    ]);
  return value;
}

/** Recipient (Nitro Enclaves attestation) is refused where AWS accepts it. */
export function unsupportedRecipient(input: { Recipient?: unknown }): void {
  if (input.Recipient !== undefined) {
    throw kmsError(
      "UnsupportedOperationException",
      "Recipient (Nitro Enclaves attestation) is not supported by Keyhaven.",
    );
  }
}
