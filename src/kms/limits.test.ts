/** The limits table of docs/security.md is the one in limits.ts, and the checks enforce it. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KmsError } from "./errors.js";
import { checkEncryptionContextSize, checkKeyPolicySize, LIMITS } from "./limits.js";

const doc = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");

describe("limits", () => {
  it("docs/security.md lists every limit with its value and exception", () => {
    const rows = doc.split("\n").filter((l) => l.startsWith("| "));
    for (const l of Object.values(LIMITS)) {
      const row = rows.find((r) => r.split("|")[1]?.trim() === l.what);
      expect(row, l.what).toBeDefined();
      const cells = row!.split("|").map((c) => c.trim());
      expect(cells[2]).toBe(`${l.limit} ${l.unit}`);
      expect(cells[3]).toBe(`\`${l.exception}\``);
    }
  });

  const code = (f: () => void) => {
    try {
      f();
    } catch (err) {
      return (err as KmsError).code;
    }
    return "none";
  };

  it("an encryption context of up to 8192 UTF-8 bytes passes, one more byte is a ValidationException", () => {
    const max = LIMITS.encryptionContextBytes.limit;
    expect(code(() => checkEncryptionContextSize({ k: "v".repeat(max - 1) }, "ec"))).toBe("none");
    expect(code(() => checkEncryptionContextSize({ k: "v".repeat(max) }, "ec"))).toBe(
      "ValidationException",
    );
    // Bytes, not characters: "é" is two bytes in UTF-8.
    expect(code(() => checkEncryptionContextSize({ k: "é".repeat(max / 2) }, "ec"))).toBe(
      "ValidationException",
    );
  });

  it("a key policy of 32768 bytes passes, one more is a LimitExceededException", () => {
    const max = LIMITS.keyPolicyBytes.limit;
    expect(code(() => checkKeyPolicySize(" ".repeat(max)))).toBe("none");
    expect(code(() => checkKeyPolicySize(" ".repeat(max + 1)))).toBe("LimitExceededException");
  });
});
