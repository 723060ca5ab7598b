import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeEncryptionContext, type EncryptionContext } from "./encryptionContext.js";

// Well-formed Unicode, as the protocol layer guarantees (model.ts refuses lone surrogates,
// which UTF-8 cannot represent and would all encode as U+FFFD).
const contexts = fc.dictionary(
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  {
    maxKeys: 5,
  },
);

const equal = (a: EncryptionContext, b: EncryptionContext) =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(a).every(([k, v]) => Object.hasOwn(b, k) && b[k] === v);

describe("encodeEncryptionContext", () => {
  it("does not confuse regroupings of the same characters", () => {
    const pairs: [EncryptionContext, EncryptionContext][] = [
      [{ ab: "c" }, { a: "bc" }],
      [
        { a: "b", c: "d" },
        { a: "bc", "": "d" },
      ],
      [{ a: "" }, { "": "a" }],
      [{}, { "": "" }],
      [{ "a\u0000": "b" }, { a: "\u0000b" }],
    ];
    for (const [a, b] of pairs) {
      expect(encodeEncryptionContext(a).equals(encodeEncryptionContext(b))).toBe(false);
    }
  });

  it("is injective: distinct contexts never encode alike (property)", () => {
    fc.assert(
      fc.property(contexts, contexts, (a, b) => {
        const same = encodeEncryptionContext(a).equals(encodeEncryptionContext(b));
        expect(same).toBe(equal(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it("is injective on near misses built from one context (property)", () => {
    fc.assert(
      fc.property(
        contexts.filter((c) => Object.keys(c).length > 0),
        fc.nat(),
        fc.string({ maxLength: 3 }),
        (context, pick, extra) => {
          const keys = Object.keys(context);
          const key = keys[pick % keys.length]!;
          const variants: EncryptionContext[] = [
            { ...context, [key]: context[key]! + extra + "x" },
            Object.fromEntries(Object.entries(context).filter(([k]) => k !== key)),
            {
              ...Object.fromEntries(Object.entries(context).filter(([k]) => k !== key)),
              [key + "x"]: context[key]!,
            },
          ];
          for (const v of variants) {
            expect(encodeEncryptionContext(v).equals(encodeEncryptionContext(context))).toBe(false);
          }
        },
      ),
    );
  });

  it("does not depend on the order of the pairs", () => {
    fc.assert(
      fc.property(contexts, fc.nat(), (context, seed) => {
        const entries = Object.entries(context);
        const shuffled = [...entries].sort(
          (a, b) =>
            ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) ||
            (seed % 2 ? 1 : -1),
        );
        const reversed = Object.fromEntries([...entries].reverse());
        const encoded = encodeEncryptionContext(context);
        expect(encodeEncryptionContext(Object.fromEntries(shuffled)).equals(encoded)).toBe(true);
        expect(encodeEncryptionContext(reversed).equals(encoded)).toBe(true);
      }),
    );
  });

  it("encodes no context and an empty context alike, as a zero pair count", () => {
    expect(encodeEncryptionContext(undefined)).toEqual(Buffer.alloc(4));
    expect(encodeEncryptionContext({})).toEqual(Buffer.alloc(4));
  });

  it("has the documented layout: u32 count, then length-prefixed UTF-8 key and value, keys sorted by bytes", () => {
    const encoded = encodeEncryptionContext({ b: "é", a: "1" });
    expect(encoded.toString("hex")).toBe(
      "00000002" + "00000001" + "61" + "00000001" + "31" + "00000001" + "62" + "00000002" + "c3a9",
    );
  });
});
