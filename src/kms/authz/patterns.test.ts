/**
 * The linear-time wildcard matcher agrees with a reference matcher (an anchored regular
 * expression built from the pattern, the old implementation, fine on short inputs) on
 * random patterns and values, and stays fast on the inputs that made regexes backtrack.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileWildcard, wildcardMatch } from "./patterns.js";

/** Reference: `*` any run, `?` any one code unit, newlines included (flag s). */
function reference(pattern: string, value: string, ignoreCase = false): boolean {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, ignoreCase ? "si" : "s").test(value);
}

// A small alphabet makes matches (and near misses) frequent.
const char = fc.constantFrom("a", "b", "/", ":", "\n", ".", "A");
const text = (maxLength: number) => fc.array(char, { maxLength }).map((cs) => cs.join(""));
const pattern = (maxLength: number) =>
  fc
    .array(fc.oneof(char, fc.constant("*"), fc.constant("?")), { maxLength })
    .map((cs) => cs.join(""));

describe("wildcard matcher", () => {
  it("agrees with the reference matcher on random patterns and values", () => {
    fc.assert(
      fc.property(pattern(12), text(16), (p, v) => wildcardMatch(p, v) === reference(p, v)),
      { numRuns: 5000 },
    );
  });

  it("agrees case-insensitively (IAM action names)", () => {
    fc.assert(
      fc.property(
        pattern(10),
        text(12),
        (p, v) => wildcardMatch(p, v, true) === reference(p, v, true),
      ),
      { numRuns: 2000 },
    );
  });

  it("agrees on long ? segments (the bit-parallel search)", () => {
    const long = fc
      .array(fc.constantFrom("a", "b", "?"), { minLength: 65, maxLength: 140 })
      .map((cs) => cs.join(""));
    fc.assert(
      fc.property(long, fc.array(fc.constantFrom("a", "b"), { maxLength: 400 }), (seg, cs) => {
        const p = `*${seg}*`;
        const v = cs.join("");
        return wildcardMatch(p, v) === reference(p, v);
      }),
      { numRuns: 500 },
    );
  });

  it("decides the inputs that froze the backtracking regexes in milliseconds", () => {
    const cases: [string, string, boolean][] = [
      ["tenants/*/files/*", `tenants/${"a/files/".repeat(35_000)}\n`, true],
      ["arn:*?*?*?*?*?*?*?X", `arn:aws:kms:us-east-1:000000000000:key/${"1".repeat(36)}`, false],
      [`*${"a".repeat(4095)}?b*`, "a".repeat(8192), false],
    ];
    for (const [p, v, expected] of cases) {
      const matches = compileWildcard(p);
      const started = performance.now();
      expect(matches(v)).toBe(expected);
      expect(performance.now() - started).toBeLessThan(500);
    }
  });
});
