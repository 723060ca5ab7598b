/**
 * Key-state and key-usage checks, with the messages of AWS's key-state table
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html).
 */
import { kmsError } from "../errors.js";
import type { KeyRecord, KeyState } from "./keyRecord.js";
import type { KeyUsage } from "./keySpecs.js";

/** Cryptographic operations need an Enabled key. */
export function assertUsable(key: KeyRecord): void {
  switch (key.state) {
    case "Enabled":
      return;
    case "Disabled":
      throw kmsError("DisabledException", `${key.arn} is disabled.`);
    case "PendingDeletion":
      throw kmsError("KMSInvalidStateException", `${key.arn} is pending deletion.`);
    case "PendingImport":
      throw kmsError("KMSInvalidStateException", `${key.arn} is pending import.`);
    case "Creating":
      throw kmsError("KMSInvalidStateException", `${key.arn} is pending creation.`);
    // AWS's key-state table: a key being Updated (UpdatePrimaryRegion) stays usable.
    case "Updating":
      return;
    case "PendingReplicaDeletion":
      throw kmsError("KMSInvalidStateException", `${key.arn} is pending replica deletion.`);
  }
}

/** Management operations (tags, description, aliases, deletion scheduling) refuse keys pending deletion. */
export function assertNotPendingDeletion(key: KeyRecord): void {
  if (key.state === "PendingDeletion" || key.state === "PendingReplicaDeletion")
    throw kmsError("KMSInvalidStateException", `${key.arn} is pending deletion.`);
}

export function assertKeyUsage(key: KeyRecord, usage: KeyUsage, operation: string): void {
  if (key.keyUsage !== usage) {
    throw kmsError(
      "InvalidKeyUsageException",
      `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`,
    );
  }
}

/** AWS's footnote for operations that need another origin (e.g. import on an AWS_KMS key). */
export function originNotValid(key: KeyRecord): Error {
  return kmsError(
    "UnsupportedOperationException",
    `${key.arn} origin is ${key.origin} which is not valid for this operation.`,
  );
}

/** Import operations need an EXTERNAL-origin key that is not pending deletion. */
export function assertImportable(key: KeyRecord): void {
  if (key.origin !== "EXTERNAL") throw originNotValid(key);
  assertNotPendingDeletion(key);
}

/** CancelKeyDeletion works only on keys pending deletion. */
export function assertPendingDeletion(key: KeyRecord): void {
  if (key.state !== "PendingDeletion" && key.state !== "PendingReplicaDeletion")
    throw kmsError("KMSInvalidStateException", `${key.arn} is not pending deletion.`);
}

/**
 * Imported material past its ValidTo is gone, even in the moment before the lifecycle
 * loop deletes it: the key answers as PendingImport (footnote [5]).
 */
export function assertMaterialCurrent(key: KeyRecord, now: number): void {
  if (
    key.materialImported === true &&
    key.materialExpiresAt !== undefined &&
    key.materialExpiresAt <= now
  )
    throw kmsError("KMSInvalidStateException", `${key.arn} is pending import.`);
}

/** EnableKey and DisableKey work on Enabled and Disabled keys only. */
export function switchState(state: "Enabled" | "Disabled") {
  return (key: KeyRecord): KeyRecord => {
    const refused: Partial<Record<KeyState, string>> = {
      PendingDeletion: "is pending deletion.",
      PendingImport: "is pending import.",
      PendingReplicaDeletion: "is pending deletion.",
      Creating: "is pending creation.",
      Updating: "is being updated.",
    };
    const why = refused[key.state];
    if (why) throw kmsError("KMSInvalidStateException", `${key.arn} ${why}`);
    return key.state === state ? key : Object.assign({}, key, { state });
  };
}
