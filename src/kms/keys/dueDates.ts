/**
 * The lifecycle's timers, as pure functions of a stored key record. A key has at
 * most one due date: the earliest of
 *
 *   - its deletion date, while PendingDeletion;
 *   - its next automatic rotation, while Enabled with rotation on (AWS rotates
 *     neither disabled keys nor keys pending deletion; a key re-enabled after its
 *     date rotates at once);
 *   - the expiry of its imported material, while the material is imported.
 *
 * Stores keep this date with each record (an indexed column in sqlite), so the
 * lifecycle loop finds due keys, and the next time to wake, without a scan.
 */
import type { KeyRecord } from "./keyRecord.js";

export const DAY_MS = 24 * 60 * 60 * 1000;

export const deletionDue = (key: KeyRecord, now: number): boolean =>
  key.state === "PendingDeletion" && key.deletionDate !== undefined && key.deletionDate <= now;

export const rotationDue = (key: KeyRecord, now: number): boolean =>
  key.state === "Enabled" &&
  key.rotationEnabled === true &&
  key.nextRotationAt !== undefined &&
  key.nextRotationAt <= now;

export const materialExpired = (key: KeyRecord, now: number): boolean =>
  key.materialImported === true &&
  key.materialExpiresAt !== undefined &&
  key.materialExpiresAt <= now;

/** The earliest stored date on which the key service must act on `key`, if any. */
export function nextDueAt(key: KeyRecord): number | undefined {
  const dates: number[] = [];
  if (key.state === "PendingDeletion" && key.deletionDate !== undefined)
    dates.push(key.deletionDate);
  if (key.state === "Enabled" && key.rotationEnabled === true && key.nextRotationAt !== undefined)
    dates.push(key.nextRotationAt);
  if (key.materialImported === true && key.materialExpiresAt !== undefined)
    dates.push(key.materialExpiresAt);
  return dates.length === 0 ? undefined : Math.min(...dates);
}
