import { createSecretKey, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CIPHERTEXT_FORMAT_V1,
  CIPHERTEXT_OVERHEAD,
  CiphertextFormatError,
  openCiphertext,
  readCiphertextHeader,
  sealCiphertext,
} from "./ciphertext.js";
import { pooledRandom, type RandomSource } from "./random.js";

const KEY = createSecretKey(Buffer.alloc(32, 0x42));
const OTHER_KEY = createSecretKey(Buffer.alloc(32, 0x43));
const HEADER = { keyId: "1234abcd-12ab-34cd-56ef-1234567890ab", materialVersion: 7 };
const random = pooledRandom();
const fixedIv: RandomSource = (size) => Buffer.alloc(size, 0xa5);

const contexts = fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), {
  maxKeys: 4,
});

describe("ciphertext format v1", () => {
  it("round-trips any plaintext and context (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), contexts, (plaintext, context) => {
        const blob = sealCiphertext(KEY, HEADER, plaintext, context, random);
        expect(blob.length).toBe(CIPHERTEXT_OVERHEAD + plaintext.length);
        expect(readCiphertextHeader(blob)).toEqual(HEADER);
        const opened = openCiphertext(KEY, blob, { ...context });
        expect(opened && Buffer.from(opened).equals(Buffer.from(plaintext))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("has the documented layout: version, key id, material version, IV, ciphertext, tag", () => {
    const plaintext = Buffer.from("hello");
    const blob = sealCiphertext(KEY, HEADER, plaintext, undefined, fixedIv);
    expect(blob[0]).toBe(CIPHERTEXT_FORMAT_V1);
    expect(blob.subarray(1, 17).toString("hex")).toBe("1234abcd12ab34cd56ef1234567890ab");
    expect(blob.readUInt32BE(17)).toBe(7);
    expect(blob.subarray(21, 33)).toEqual(Buffer.alloc(12, 0xa5));
    expect(blob.length).toBe(1 + 16 + 4 + 12 + plaintext.length + 16);
    expect(CIPHERTEXT_OVERHEAD).toBe(49);
  });

  it("draws a fresh IV for every seal", () => {
    const a = sealCiphertext(KEY, HEADER, Buffer.from("x"), undefined, random);
    const b = sealCiphertext(KEY, HEADER, Buffer.from("x"), undefined, random);
    expect(a.subarray(21, 33).equals(b.subarray(21, 33))).toBe(false);
  });

  it("treats no context and an empty context alike", () => {
    const blob = sealCiphertext(KEY, HEADER, Buffer.from("x"), undefined, random);
    expect(openCiphertext(KEY, blob, {})?.toString()).toBe("x");
  });

  it("refuses any flipped byte (property)", () => {
    const blob = sealCiphertext(KEY, HEADER, randomBytes(64), { a: "b" }, random);
    fc.assert(
      fc.property(
        fc.nat({ max: blob.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, mask) => {
          const tampered = Buffer.from(blob);
          tampered[at]! ^= mask;
          let header;
          try {
            header = readCiphertextHeader(tampered);
          } catch (err) {
            expect(err).toBeInstanceOf(CiphertextFormatError);
            expect(at).toBe(0);
            return;
          }
          // A blob whose header was changed still names *some* key; it must not authenticate.
          expect(header).toBeDefined();
          expect(openCiphertext(KEY, tampered, { a: "b" })).toBeUndefined();
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses any other context (property) and another key", () => {
    const context = { tenant: "acme", ab: "c" };
    const blob = sealCiphertext(KEY, HEADER, Buffer.from("secret"), context, random);
    fc.assert(
      fc.property(contexts, (other) => {
        const same =
          Object.keys(other).length === 2 && other["tenant"] === "acme" && other["ab"] === "c";
        fc.pre(!same);
        expect(openCiphertext(KEY, blob, other)).toBeUndefined();
      }),
    );
    expect(openCiphertext(KEY, blob, { tenant: "acme", a: "bc" })).toBeUndefined();
    expect(openCiphertext(OTHER_KEY, blob, context)).toBeUndefined();
  });

  it("rejects truncated blobs and unknown versions when reading the header", () => {
    const blob = sealCiphertext(KEY, HEADER, Buffer.from("x"), undefined, random);
    expect(() => readCiphertextHeader(blob.subarray(0, CIPHERTEXT_OVERHEAD - 1))).toThrow(
      CiphertextFormatError,
    );
    expect(() => readCiphertextHeader(Buffer.alloc(0))).toThrow(CiphertextFormatError);
    for (const unknown of [0, 4, 0xff]) {
      const other = Buffer.from(blob);
      other[0] = unknown;
      expect(() => readCiphertextHeader(other)).toThrow(CiphertextFormatError);
    }
    // A header read from a view into a larger buffer uses the view's offset.
    const padded = Buffer.concat([Buffer.alloc(5, 9), blob]);
    expect(readCiphertextHeader(padded.subarray(5))).toEqual(HEADER);
    expect(openCiphertext(KEY, padded.subarray(5), undefined)?.toString()).toBe("x");
  });

  it("carries a multi-Region key id (mrk-) as format 0x02, bound like the rest of the header", () => {
    const mrk = { keyId: `mrk-${"0123456789abcdef".repeat(2)}`, materialVersion: 3 };
    const blob = sealCiphertext(KEY, mrk, Buffer.from("y"), undefined, random);
    expect(blob[0]).toBe(0x02);
    expect(blob.subarray(1, 17).toString("hex")).toBe("0123456789abcdef".repeat(2));
    expect(readCiphertextHeader(blob)).toEqual(mrk);
    expect(openCiphertext(KEY, blob, undefined)?.toString()).toBe("y");
    const asUuidKey = Buffer.from(blob);
    asUuidKey[0] = 0x01;
    expect(openCiphertext(KEY, asUuidKey, undefined)).toBeUndefined();
  });

  it("refuses a key id that is not a UUID when sealing", () => {
    expect(() =>
      sealCiphertext(
        KEY,
        { keyId: "not-a-uuid", materialVersion: 1 },
        Buffer.from("x"),
        undefined,
        random,
      ),
    ).toThrow(CiphertextFormatError);
  });
});

describe("pooledRandom", () => {
  it("never hands out the same bytes twice", () => {
    const source = pooledRandom(1024);
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const iv = source(12);
      expect(iv.length).toBe(12);
      seen.add(iv.toString("hex"));
    }
    expect(seen.size).toBe(500);
    expect(source(4096).length).toBe(4096);
  });

  it("returns copies the caller may wipe without touching later values", () => {
    const source = pooledRandom(64);
    const a = source(16);
    a.fill(0);
    const b = source(16);
    expect(b.equals(Buffer.alloc(16))).toBe(false);
  });
});
