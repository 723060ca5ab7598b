/**
 * What the lifecycle does when a date falls due, and the rotation shared with
 * RotateKeyOnDemand. Each action re-checks its condition inside the store's atomic
 * write, so running it twice, or racing an API call, is harmless.
 */
import { materialFingerprint } from "../crypto/importWrapping.js";
import type { KeyService } from "../keyService.js";
import { StoreConflictError } from "../store/keyStore.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { omit } from "./omit.js";
import { leaveFamily, pushToReplicas } from "../peering/replication.js";
import { DAY_MS, deletionDue, materialExpired, rotationDue } from "../keys/dueDates.js";

/** Thrown by a mutator to abort a write whose condition no longer holds. */
class NotDue extends Error {
  override name = "NotDue";
}

export type RotationType = "AUTOMATIC" | "ON_DEMAND";

/**
 * Adds a new material version to a symmetric key and makes it current. `check` runs on
 * the stored record inside the write (throw to refuse). A concurrent rotation of the
 * same key makes the version clash; we then retry on the newer record.
 */
export function rotateKeyMaterial(
  service: KeyService,
  keyId: string,
  type: RotationType,
  check: (current: KeyRecord, now: number) => void = () => {},
): Promise<KeyRecord | undefined> {
  // Rotations of one key in this process take turns, so they never clash on a version;
  // the version check in the write still settles races with other processes.
  const previous = rotationsInFlight.get(keyId) ?? Promise.resolve();
  const next = previous.then(
    () => rotateOnce(service, keyId, type, check),
    () => rotateOnce(service, keyId, type, check),
  );
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  rotationsInFlight.set(keyId, settled);
  void settled.then(() => {
    if (rotationsInFlight.get(keyId) === settled) rotationsInFlight.delete(keyId);
  });
  // A multi-Region primary hands the new version to its replicas (sealed for each).
  return next.then(async (rotated) => {
    if (rotated?.multiRegion) await pushToReplicas(service, rotated);
    return rotated;
  });
}

const rotationsInFlight = new Map<string, Promise<void>>();

async function rotateOnce(
  service: KeyService,
  keyId: string,
  type: RotationType,
  check: (current: KeyRecord, now: number) => void,
): Promise<KeyRecord | undefined> {
  for (let attempt = 0; ; attempt++) {
    const before = await service.store.getKey(keyId);
    if (!before) return undefined;
    const version = before.currentMaterialVersion + 1;
    const now = service.clock.now().getTime();
    const material = service.random(32);
    const materialId = materialFingerprint(material);
    const wrapped = await service.wrapMaterial(keyId, version, material);
    material.fill(0);
    try {
      return await service.store.updateKeyWithMaterial(
        keyId,
        { keyId, version, createdAt: now, wrapped, rotationType: type, materialId },
        (current) => {
          if (current.currentMaterialVersion !== version - 1)
            throw new StoreConflictError("rotated concurrently");
          check(current, now);
          return type === "AUTOMATIC"
            ? {
                ...current,
                currentMaterialVersion: version,
                nextRotationAt: now + (current.rotationPeriodInDays ?? 365) * DAY_MS,
              }
            : {
                ...current,
                currentMaterialVersion: version,
                onDemandRotations: (current.onDemandRotations ?? 0) + 1,
              };
        },
      );
    } catch (err) {
      if (err instanceof StoreConflictError && attempt < 3) continue;
      throw err;
    }
  }
}

/** Record fields of imported material that go away with it. */
export function withoutImportedMaterial(key: KeyRecord): KeyRecord {
  return {
    ...omit(key, "expirationModel", "materialExpiresAt"),
    materialImported: false,
    state: key.state === "PendingDeletion" ? "PendingDeletion" : "PendingImport",
  };
}

export interface LifecycleReport {
  readonly rotated: string[];
  readonly expired: string[];
  readonly deleted: string[];
  readonly failed: string[];
}

export interface ActionObserver {
  /** One line per action, for the audit log (no key material, ever). */
  acted(action: "RotateKey" | "ExpireKeyMaterial" | "DeleteKey", key: KeyRecord): void;
  failed(key: KeyRecord, err: unknown): void;
}

/**
 * Performs every action due at `now`: deletions first (a key due for deletion and
 * rotation is just deleted), then material expiry, then automatic rotation.
 */
export async function runDueActions(
  service: KeyService,
  now: number,
  observer: ActionObserver,
): Promise<LifecycleReport> {
  const report: LifecycleReport = { rotated: [], expired: [], deleted: [], failed: [] };
  const failed = new Set<string>();
  for (;;) {
    const due = (await service.store.keysDue(now, 100 + failed.size)).filter(
      (k) => !failed.has(k.keyId),
    );
    if (due.length === 0) break;
    for (const key of due) {
      try {
        await actOn(service, key, now, report, observer);
      } catch (err) {
        failed.add(key.keyId);
        report.failed.push(key.keyId);
        observer.failed(key, err);
      }
    }
  }
  await service.store.deleteExpiredImportParameters(now);
  return report;
}

async function actOn(
  service: KeyService,
  key: KeyRecord,
  now: number,
  report: LifecycleReport,
  observer: ActionObserver,
): Promise<void> {
  const store = service.store;
  if (deletionDue(key, now)) {
    // Re-read right before the delete: a CancelKeyDeletion may have won the race.
    const current = await store.getKey(key.keyId);
    if (!current || !deletionDue(current, now)) return;
    // A multi-Region replica leaves its primary's family first; if the primary's instance
    // cannot be reached, the deletion waits for the next check.
    await leaveFamily(service, current);
    // Of replicas racing here (a lease handed over mid-timer), only the one whose delete
    // removed the key reports it.
    const deleted = await store.deleteKey(key.keyId);
    service.forgetMaterial(key.keyId);
    if (!deleted) return;
    await service.customKeyStores?.forgetKey(current);
    report.deleted.push(key.keyId);
    observer.acted("DeleteKey", current);
    return;
  }
  if (materialExpired(key, now)) {
    try {
      const updated = await store.updateKeyRemovingMaterial(key.keyId, (current) => {
        if (!materialExpired(current, now)) throw new NotDue();
        return withoutImportedMaterial(current);
      });
      service.forgetMaterial(key.keyId);
      if (updated) {
        report.expired.push(key.keyId);
        observer.acted("ExpireKeyMaterial", updated);
      }
    } catch (err) {
      if (!(err instanceof NotDue)) throw err;
    }
    return;
  }
  if (rotationDue(key, now)) {
    try {
      const updated = await rotateKeyMaterial(service, key.keyId, "AUTOMATIC", (current, at) => {
        if (!rotationDue(current, at)) throw new NotDue();
      });
      if (updated) {
        report.rotated.push(key.keyId);
        observer.acted("RotateKey", updated);
      }
    } catch (err) {
      if (!(err instanceof NotDue)) throw err;
    }
    return;
  }
  // keysDue returned a key that nextDueAt says is due but no action applies: cannot
  // happen while dueDates.ts and this switch agree; fail loudly rather than spin.
  throw new Error(`key ${key.keyId} is due but no lifecycle action applies`);
}
