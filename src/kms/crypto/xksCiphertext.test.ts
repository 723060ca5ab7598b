import { createSecretKey, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  openXks,
  sealXks,
  xksAad,
  xksIntegrityValue,
  xksMaterialVersion,
  xksMetadata,
} from "./xksCiphertext.js";

const material = createSecretKey(randomBytes(32));
const random = (n: number) => randomBytes(n);

describe("XKS AES-GCM (the XKS Proxy API's Encrypt and Decrypt)", () => {
  it("computes Appendix C's CDIV example", () => {
    const b = (s: string) => Buffer.from(s, "base64");
    const value = xksIntegrityValue(b("cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n"), {
      ciphertextMetadata: b("a2V5X3ZlcnNpb249MQ=="),
      initializationVector: b("HMrlRw85cAJUd5Ax"),
      ciphertext: b("ghxkK1txeDNn3q8Y"),
      authenticationTag: b("vBxN2ncH1oEkR8WVXpmyYQ=="),
    });
    expect(value.toString("base64")).toBe("qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
  });

  it("builds the AAD as u16 length ‖ aad ‖ u8 length ‖ metadata, lengths zero when absent", () => {
    expect(xksAad(undefined, undefined)).toEqual(Buffer.from([0, 0, 0]));
    expect(xksAad(Buffer.from("ab"), Buffer.from([9]))).toEqual(
      Buffer.from([0, 2, 0x61, 0x62, 1, 9]),
    );
    expect(() => xksAad(Buffer.alloc(65_536), undefined)).toThrow(RangeError);
    expect(() => xksAad(undefined, Buffer.alloc(21))).toThrow(RangeError);
  });

  it("records the material version in 5 bytes of metadata", () => {
    expect(xksMaterialVersion(xksMetadata(7))).toBe(7);
    expect(xksMaterialVersion(undefined)).toBeUndefined();
    expect(xksMaterialVersion(Buffer.from([2, 0, 0, 0, 7]))).toBeUndefined();
  });

  it("round-trips, and any change to a part, the AAD or the metadata fails", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.option(fc.uint8Array({ maxLength: 100 }), { nil: undefined }),
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom("ciphertextMetadata", "initializationVector", "authenticationTag"),
        (pt, aadBytes, version, part) => {
          const plaintext = Buffer.from(pt);
          const aad = aadBytes && Buffer.from(aadBytes);
          const sealed = sealXks(material, version, plaintext, aad, random);
          expect(sealed.ciphertext.length).toBe(plaintext.length);
          expect(openXks(material, sealed, aad)).toEqual(plaintext);
          const changed = Buffer.from(sealed[part]);
          changed[0]! ^= 1;
          expect(openXks(material, { ...sealed, [part]: changed }, aad)).toBeUndefined();
          expect(
            openXks(material, sealed, Buffer.concat([aad ?? Buffer.alloc(0), Buffer.from("x")])),
          ).toBeUndefined();
          // Metadata shifted into the AAD does not authenticate.
          const shifted = Buffer.concat([aad ?? Buffer.alloc(0), sealed.ciphertextMetadata]);
          expect(
            openXks(material, { ...sealed, ciphertextMetadata: undefined }, shifted),
          ).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  });
});
