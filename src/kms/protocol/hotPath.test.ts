/**
 * The hot path's shortcuts (see docs/benchmarks.md) must answer exactly as the
 * straightforward code did: base64 checked by re-encoding before the pattern,
 * blobs encoded from a view, header values canonicalised only when they need it.
 */
import { createHmac, hash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KmsError } from "../errors.js";
import { decodeInput, encodeOutput } from "./model.js";
import type { SigningCredential } from "../identity/signingCredential.js";
import { verifySigV4 } from "./sigv4.js";

/** The blob check as it was: the pattern alone. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodePlaintext(value: string): Buffer | "SerializationException" {
  try {
    return decodeInput("Encrypt", { KeyId: "k", Plaintext: value }).Plaintext as Buffer;
  } catch (err) {
    if (err instanceof KmsError && err.code === "SerializationException") return err.code;
    // A length problem (empty or > 4096 bytes) is a ValidationException after decoding.
    if (err instanceof KmsError && err.code === "ValidationException") return Buffer.alloc(0);
    throw err;
  }
}

describe("blob decoding", () => {
  const alphabet = fc.constantFrom(
    ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n".split(""),
  );

  it("accepts exactly the strings the base64 pattern accepts, and decodes them alike", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: alphabet, maxLength: 24 }),
          // Canonical encodings, and canonical ones with the last character changed
          // (non-zero padding bits: valid for the pattern, not canonical).
          fc
            .tuple(fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.option(alphabet))
            .map(([bytes, last]) => {
              const text = Buffer.from(bytes).toString("base64");
              if (last === null) return text;
              const at = text.replace(/=+$/, "").length - 1;
              return text.slice(0, at) + last + text.slice(at + 1);
            }),
        ),
        (value) => {
          const decoded = decodePlaintext(value);
          if (!BASE64.test(value)) {
            expect(decoded).toBe("SerializationException");
          } else if (value.length > 0) {
            expect(decoded).toEqual(Buffer.from(value, "base64"));
          }
        },
      ),
    );
  });

  it("encodes only the bytes of a blob that is a view into a larger buffer", () => {
    const backing = Buffer.from("0123456789abcdef");
    const view = backing.subarray(4, 9);
    const out = encodeOutput("Encrypt", { CiphertextBlob: view, KeyId: "k" }) as {
      CiphertextBlob: string;
    };
    expect(Buffer.from(out.CiphertextBlob, "base64").toString()).toBe("45678");
  });
});

describe("signed header values", () => {
  const credential: SigningCredential = {
    accessKeyId: "AKIAHOTPATHTEST0001",
    secretAccessKey: "hot-path-test-secret-0123456789",
  };
  const date = "20261128T120000Z";
  const now = new Date("2026-11-28T12:00:00Z");

  /** Signs with the reference canonicalisation: trim, then every whitespace run to one space. */
  function sign(headers: Record<string, string>, body: string) {
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names
      .map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, " ")}\n`)
      .join("");
    const canonicalRequest = [
      "POST",
      "/",
      "",
      canonicalHeaders,
      names.join(";"),
      hash("sha256", body, "hex"),
    ].join("\n");
    const scope = `${date.slice(0, 8)}/us-east-1/kms/aws4_request`;
    const stringToSign = [
      "AWS4-HMAC-SHA256",
      date,
      scope,
      hash("sha256", canonicalRequest, "hex"),
    ].join("\n");
    let key: Buffer = createHmac("sha256", `AWS4${credential.secretAccessKey}`)
      .update(date.slice(0, 8))
      .digest();
    for (const part of ["us-east-1", "kms", "aws4_request"])
      key = createHmac("sha256", key).update(part).digest();
    const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
    return {
      authorization: `AWS4-HMAC-SHA256 Credential=${credential.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
    };
  }

  const verify = (headers: Record<string, string>, body: string) =>
    verifySigV4(
      {
        method: "POST",
        url: "/",
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
        body: Buffer.from(body),
      },
      {
        service: "kms",
        region: "us-east-1",
        now,
        lookup: (id) => (id === credential.accessKeyId ? credential : undefined),
      },
    );

  it("verifies values with any whitespace as the reference canonicalisation signs them", () => {
    const whitespace = fc.constantFrom(" ", "  ", "\t", " \t ", "\u00a0", "");
    const word = fc.stringMatching(/^[a-z0-9.;=/-]{1,8}$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(whitespace, word), { minLength: 1, maxLength: 4 }),
        whitespace,
        (parts, tail) => {
          const value = parts.map(([ws, w]) => ws + w).join("") + tail;
          const headers = {
            host: "127.0.0.1:8080",
            "x-amz-date": date,
            "x-custom": value,
          };
          const signed = { ...headers, ...sign(headers, "{}") };
          expect(verify(signed, "{}")).toBe(credential);
          // Removing whitespace between words changes the canonical value.
          const squeezed = value.trim().replace(/\s+/g, "");
          if (squeezed !== value.trim().replace(/\s+/g, " ")) {
            expect(() => verify({ ...signed, "x-custom": squeezed }, "{}")).toThrow(
              /signature we calculated does not match/,
            );
          }
        },
      ),
    );
  });
});
