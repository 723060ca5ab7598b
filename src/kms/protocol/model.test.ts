import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KmsError } from "../errors.js";
import { decodeInput, encodeOutput, modelledOperations } from "./model.js";

function error(operation: string, body: unknown): { code: string; message: string } {
  try {
    decodeInput(operation, body);
  } catch (err) {
    if (err instanceof KmsError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("decoded, but it should have failed");
}

describe("decodeInput validation", () => {
  it("words range errors as AWS does", () => {
    expect(error("GenerateRandom", { NumberOfBytes: 1025 })).toEqual({
      code: "ValidationException",
      message:
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    });
    expect(error("GenerateRandom", { NumberOfBytes: 0 }).message).toBe(
      "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
  });

  it("reports required members and counts several problems", () => {
    expect(error("Encrypt", {})).toEqual({
      code: "ValidationException",
      message:
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
    });
  });

  it("checks lengths, enums and patterns", () => {
    expect(error("DescribeKey", { KeyId: "" }).message).toBe(
      "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
    expect(error("CreateKey", { KeySpec: "AES_512" }).message).toContain(
      "Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [",
    );
    expect(error("CreateAlias", { AliasName: "alias/a b", TargetKeyId: "k" }).message).toBe(
      "1 validation error detected: Value 'alias/a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    );
    expect(
      error("TagResource", { KeyId: "k", Tags: [{ TagKey: "", TagValue: "v" }] }).message,
    ).toBe(
      "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  });

  it("never echoes a sensitive value", () => {
    const secret = Buffer.alloc(4097, 0x41);
    const { code, message } = error("Encrypt", {
      KeyId: "k",
      Plaintext: secret.toString("base64"),
    });
    expect(code).toBe("ValidationException");
    expect(message).toBe(
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    expect(message).not.toContain("QUFB");
  });

  it("answers wrong JSON types and invalid base64 with SerializationException", () => {
    for (const [operation, body] of [
      ["GenerateRandom", { NumberOfBytes: "12" }],
      ["GenerateRandom", { NumberOfBytes: 1.5 }],
      ["DescribeKey", { KeyId: 42 }],
      ["Encrypt", { KeyId: "k", Plaintext: "not base64!" }],
      ["Encrypt", { KeyId: "k", Plaintext: "abc" }],
      ["Encrypt", { KeyId: "k", Plaintext: "aGk=", EncryptionContext: ["a"] }],
      ["Encrypt", { KeyId: "k", Plaintext: "aGk=", EncryptionContext: { a: 1 } }],
      ["TagResource", { KeyId: "k", Tags: { TagKey: "a" } }],
      ["CreateKey", { MultiRegion: "yes" }],
      ["ListKeys", [1, 2]],
      ["ListKeys", "string"],
      ["ListKeys", null],
    ] as const) {
      expect(error(operation, body).code).toBe("SerializationException");
    }
  });

  it("refuses lone surrogates, which UTF-8 cannot carry (they would all read as U+FFFD)", () => {
    const body = (context: string) =>
      JSON.parse(`{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":${context}}`) as unknown;
    expect(error("Encrypt", body('{"k":"\\ud800"}')).code).toBe("SerializationException");
    expect(error("Encrypt", body('{"\\udc00":"v"}')).code).toBe("SerializationException");
    expect(error("CreateKey", { Description: "a\udfffb" }).code).toBe("SerializationException");
    // Surrogate pairs (astral characters) are well-formed.
    const ok = decodeInput("Encrypt", body('{"k":"\\ud83d\\ude00"}'));
    expect(ok["EncryptionContext"]).toEqual({ k: "😀" });
  });

  it("ignores members the model does not know", () => {
    expect(decodeInput("ListKeys", { Limit: 5, Bogus: true })).toEqual({ Limit: 5 });
  });

  it("keeps every encryption context key, including __proto__", () => {
    const decoded = decodeInput(
      "Encrypt",
      JSON.parse('{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":{"__proto__":"x","a":"b"}}'),
    );
    const context = decoded["EncryptionContext"] as Record<string, string>;
    expect(Object.entries(context)).toEqual([
      ["__proto__", "x"],
      ["a", "b"],
    ]);
    expect(Object.getPrototypeOf(context)).toBe(Object.prototype);
  });
});

describe("blob and timestamp conversion", () => {
  it("round-trips blobs: base64 in, Buffer to the handler, base64 out", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4096 }), (bytes) => {
        const wire = Buffer.from(bytes).toString("base64");
        const decoded = decodeInput("Encrypt", { KeyId: "k", Plaintext: wire });
        expect(Buffer.isBuffer(decoded["Plaintext"])).toBe(true);
        expect(Buffer.from(decoded["Plaintext"] as Buffer).equals(Buffer.from(bytes))).toBe(true);
        const encoded = encodeOutput("Decrypt", { Plaintext: decoded["Plaintext"], KeyId: "k" });
        expect(encoded).toEqual({ Plaintext: wire, KeyId: "k" });
      }),
      { numRuns: 200 },
    );
  });

  it("encodes timestamps as epoch seconds, nested in structures and lists", () => {
    const created = new Date("2026-11-28T12:34:56.789Z");
    const out = encodeOutput("ListAliases", {
      Aliases: [{ AliasName: "alias/a", CreationDate: created }],
      Truncated: false,
    });
    expect(out).toEqual({
      Aliases: [{ AliasName: "alias/a", CreationDate: created.getTime() / 1000 }],
      Truncated: false,
    });
    const described = encodeOutput("DescribeKey", {
      KeyMetadata: { KeyId: "k", CreationDate: created, Enabled: true, Description: undefined },
    });
    expect(described).toEqual({
      KeyMetadata: { KeyId: "k", CreationDate: created.getTime() / 1000, Enabled: true },
    });
  });

  it("decodes timestamps from epoch seconds", () => {
    const decoded = decodeInput("ImportKeyMaterial", {
      KeyId: "k",
      ImportToken: "aGk=",
      EncryptedKeyMaterial: "aGk=",
      ValidTo: Date.parse("2026-11-28T12:34:56.500Z") / 1000,
    });
    expect(decoded["ValidTo"]).toEqual(new Date("2026-11-28T12:34:56.500Z"));
  });

  it("knows every operation of the KMS model", () => {
    expect(modelledOperations.has("Encrypt")).toBe(true);
    expect(modelledOperations.size).toBeGreaterThanOrEqual(50);
  });
});
