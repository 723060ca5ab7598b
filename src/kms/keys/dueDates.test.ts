import fc from "fast-check";
import { symmetricKeyRecord } from "../../../test/support/keyRecords.js";
import { describe, expect, it } from "vitest";
import type { KeyRecord, KeyState } from "./keyRecord.js";
import { deletionDue, materialExpired, nextDueAt, rotationDue } from "./dueDates.js";

const base: KeyRecord = symmetricKeyRecord({ keyId: "00000000-0000-4000-8000-000000000000" });

const date = fc.integer({ min: 0, max: 10_000 });
const record = fc
  .record(
    {
      state: fc.constantFrom<KeyState>("Enabled", "Disabled", "PendingDeletion", "PendingImport"),
      deletionDate: date,
      rotationEnabled: fc.boolean(),
      nextRotationAt: date,
      materialImported: fc.boolean(),
      materialExpiresAt: date,
    },
    { requiredKeys: ["state"] },
  )
  .map((fields): KeyRecord => ({ ...base, ...fields }));

describe("nextDueAt", () => {
  it("is due at `now` exactly when one of the lifecycle actions applies", () => {
    fc.assert(
      fc.property(record, date, (key, now) => {
        const due = nextDueAt(key);
        const actionable =
          deletionDue(key, now) || materialExpired(key, now) || rotationDue(key, now);
        expect(due !== undefined && due <= now).toBe(actionable);
      }),
    );
  });

  it("ignores rotation dates of keys that are disabled or pending deletion, as AWS does", () => {
    const rotating = { ...base, rotationEnabled: true, nextRotationAt: 100 };
    expect(nextDueAt(rotating)).toBe(100);
    expect(nextDueAt({ ...rotating, state: "Disabled" })).toBeUndefined();
    expect(nextDueAt({ ...rotating, state: "PendingDeletion", deletionDate: 500 })).toBe(500);
  });

  it("takes the earliest of deletion and material expiry", () => {
    const key: KeyRecord = {
      ...base,
      origin: "EXTERNAL",
      state: "PendingDeletion",
      deletionDate: 700,
      materialImported: true,
      materialExpiresAt: 300,
    };
    expect(nextDueAt(key)).toBe(300);
  });
});
