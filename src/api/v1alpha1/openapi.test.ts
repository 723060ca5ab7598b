import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { setCondition } from "./conditions.js";
import { applyDefaults, celRules, celSupported, prune, validate } from "./openapi.js";
import { objectSchema } from "./schemas.js";

const keySchema = objectSchema("KmsKey");
const spec = (s: object, old?: object) => validate(keySchema, { spec: s }, old && { spec: old });

describe("KmsKey schema", () => {
  it("accepts every period in 90..2560 and every window in 7..30, refuses the rest (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -10, max: 4000 }),
        fc.integer({ min: -5, max: 60 }),
        (period, window) => {
          const errors = spec({
            rotation: { enabled: true, periodDays: period },
            deletion: { pendingWindowDays: window },
          });
          const ok = period >= 90 && period <= 2560 && window >= 7 && window <= 30;
          expect(errors.length === 0).toBe(ok);
        },
      ),
    );
  });

  it("keySpec, keyUsage and origin are immutable; keyUsage may be set once but never changed or removed", () => {
    expect(spec({ keySpec: "HMAC_256" }, { keySpec: "SYMMETRIC_DEFAULT" })[0]?.message).toMatch(
      /keySpec is immutable/,
    );
    expect(spec({ origin: "EXTERNAL" }, { origin: "AWS_KMS" })[0]?.message).toMatch(
      /origin is immutable/,
    );
    expect(spec({ keyUsage: "ENCRYPT_DECRYPT" }, {})).toEqual([]);
    expect(spec({}, { keyUsage: "ENCRYPT_DECRYPT" })[0]?.message).toMatch(
      /keyUsage is immutable once set/,
    );
    expect(spec({ description: "changed" }, { description: "old" })).toEqual([]);
  });

  it("customKeyStoreId goes with origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE only, and is immutable", () => {
    const hsm = { origin: "AWS_CLOUDHSM", customKeyStoreId: "cks-0123456789abcdef0" };
    expect(spec(hsm)).toEqual([]);
    expect(spec({ origin: "AWS_CLOUDHSM" })[0]?.message).toMatch(
      /customKeyStoreId goes with origin AWS_CLOUDHSM/,
    );
    expect(spec({ customKeyStoreId: "cks-0123456789abcdef0" })[0]?.message).toMatch(
      /customKeyStoreId goes with origin AWS_CLOUDHSM/,
    );
    expect(spec({ ...hsm, customKeyStoreId: "cks-11111111111111111" }, hsm)[0]?.message).toMatch(
      /customKeyStoreId is immutable/,
    );
  });

  it("multiRegion and replicaOf: one or the other, both immutable, a replica not in a custom key store", () => {
    const replicaOf = { region: "us-east-1", keyId: "mrk-0123456789abcdef0123456789abcdef" };
    expect(spec({ multiRegion: true })).toEqual([]);
    expect(spec({ replicaOf })).toEqual([]);
    expect(spec({ multiRegion: true, replicaOf })[0]?.message).toMatch(/set one or the other/);
    expect(spec({ multiRegion: false }, { multiRegion: true })[0]?.message).toMatch(
      /multiRegion is immutable/,
    );
    expect(spec({}, { replicaOf })[0]?.message).toMatch(/replicaOf is immutable/);
    expect(spec({ replicaOf }, {})[0]?.message).toMatch(/replicaOf is immutable/);
    expect(
      spec({ replicaOf: { ...replicaOf, region: "eu-west-1" } }, { replicaOf })[0]?.message,
    ).toMatch(/replicaOf is immutable/);
    expect(spec({ replicaOf: { ...replicaOf, keyId: "1234" } }).length).toBeGreaterThan(0);
  });

  it("xksKeyId goes with origin EXTERNAL_KEY_STORE only (and its custom key store), and is immutable", () => {
    const xks = {
      origin: "EXTERNAL_KEY_STORE",
      customKeyStoreId: "cks-0123456789abcdef0",
      xksKeyId: "external-key-1",
    };
    expect(spec(xks)).toEqual([]);
    const messages = (s: Record<string, unknown>, old?: Record<string, unknown>) =>
      spec(s, old).map((e) => e.message);
    expect(messages({ ...xks, xksKeyId: undefined })).toEqual([
      expect.stringMatching(/xksKeyId goes with origin EXTERNAL_KEY_STORE/),
    ]);
    expect(messages({ ...xks, customKeyStoreId: undefined })).toEqual([
      expect.stringMatching(/customKeyStoreId goes with origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE/),
    ]);
    expect(messages({ xksKeyId: "external-key-1" })).toEqual([
      expect.stringMatching(/xksKeyId goes with origin EXTERNAL_KEY_STORE/),
    ]);
    expect(messages({ ...xks, xksKeyId: "no spaces" })).toEqual([
      expect.stringMatching(/pattern|match/i),
    ]);
    expect(messages({ ...xks, xksKeyId: "external-key-2" }, xks)).toEqual([
      expect.stringMatching(/xksKeyId is immutable/),
    ]);
  });

  it("defaults nested objects as the API server does, and prunes unknown fields", () => {
    const obj = applyDefaults(keySchema, prune(keySchema, { spec: { extra: 1 } })) as {
      spec: Record<string, unknown>;
    };
    expect(obj.spec).toEqual({
      keySpec: "SYMMETRIC_DEFAULT",
      origin: "AWS_KMS",
      multiRegion: false,
      enabled: true,
      rotation: { enabled: false, periodDays: 365 },
      deletion: { pendingWindowDays: 30, policy: "Delete", requested: false },
    });
  });

  it("every CEL rule of every kind is understood", () => {
    for (const kind of ["KmsKey", "KmsAlias", "KmsGrant"] as const)
      for (const rule of celRules(objectSchema(kind))) expect(celSupported(rule), rule).toBe(true);
  });
});

describe("conditions", () => {
  it("lastTransitionTime moves only when the status flips", () => {
    const t1 = new Date("2026-01-01T00:00:00Z");
    const t2 = new Date("2026-01-02T00:00:00Z");
    let list = setCondition(
      undefined,
      { type: "Ready", status: "True", reason: "A", message: "" },
      1,
      t1,
    );
    list = setCondition(list, { type: "Ready", status: "True", reason: "B", message: "m" }, 2, t2);
    expect(list[0]).toMatchObject({
      lastTransitionTime: "2026-01-01T00:00:00Z",
      reason: "B",
      observedGeneration: 2,
    });
    list = setCondition(list, { type: "Ready", status: "False", reason: "C", message: "" }, 2, t2);
    expect(list[0]?.lastTransitionTime).toBe("2026-01-02T00:00:00Z");
  });
});
