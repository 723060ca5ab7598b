/**
 * The canonical encryption-context view (encryptionContext.ts): its shape, and that grant
 * constraints and key-policy conditions decide from it alike, whatever the case of the keys.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalContext } from "./encryptionContext.js";
import { decide } from "./evaluate.js";
import { constraintsAllow, type Grant } from "./grants.js";
import { compilePolicy } from "./policy.js";
import { principalFromArn } from "./principal.js";
import { requestConditions } from "./requestContext.js";

const ACCOUNT = "111122223333";
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const CALLER = principalFromArn(`arn:aws:iam::${ACCOUNT}:user/app`);

// Keys that collide when lower-cased, values that differ only in case.
const key = fc.constantFrom("tenant", "Tenant", "TENANT", "env", "Env", "__proto__", "app");
const value = fc.constantFrom("A", "a", "B", "");
const context = fc.dictionary(key, value, { maxKeys: 5 });

/** Builds a context in the given key order (the model decoder defines "__proto__" as own). */
function ordered(entries: [string, string][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries)
    Object.defineProperty(out, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

describe("canonical encryption context", () => {
  it("lower-cases keys, marks keys spelled several ways ambiguous, and ignores order", () => {
    fc.assert(
      fc.property(context, (ctx) => {
        const entries = Object.entries(ctx);
        const view = canonicalContext(ordered(entries));
        const reversed = canonicalContext(ordered([...entries].reverse()));
        const spellings = new Map<string, string[]>();
        for (const [k] of entries) {
          const list = spellings.get(k.toLowerCase()) ?? [];
          spellings.set(k.toLowerCase(), [...list, k]);
        }
        for (const [lower, ks] of spellings) {
          if (ks.length > 1) {
            expect(view.ambiguous.has(lower)).toBe(true);
            expect(view.pairs.has(lower)).toBe(false);
          } else expect(view.pairs.get(lower)).toBe(ctx[ks[0]!]);
        }
        expect(view.pairs.size + view.ambiguous.size).toBe(spellings.size);
        expect([...reversed.pairs].sort()).toEqual([...view.pairs].sort());
        expect([...reversed.ambiguous].sort()).toEqual([...view.ambiguous].sort());
        expect(view.keys).toEqual(entries.map(([k]) => k));
      }),
      { numRuns: 1000 },
    );
  });

  it("grant constraints and key-policy conditions decide alike", () => {
    fc.assert(
      fc.property(context, key, value, (ctx, k, v) => {
        const grant: Grant = {
          grantId: "a".repeat(64),
          keyId: "1234abcd-12ab-34cd-56ef-1234567890ab",
          granteePrincipal: CALLER.arn,
          issuingAccount: ACCOUNT,
          operations: ["Encrypt"],
          constraints: { EncryptionContextSubset: { [k]: v } },
          createdAt: 0,
        };
        const policy = compilePolicy(
          JSON.stringify({
            Statement: [
              {
                Effect: "Allow",
                Principal: { AWS: CALLER.arn },
                Action: "kms:Encrypt",
                Resource: "*",
                Condition: { StringEquals: { [`kms:EncryptionContext:${k}`]: v } },
              },
            ],
          }),
          "key",
        );
        const byPolicy = decide({
          principal: CALLER,
          action: "kms:Encrypt",
          key: { keyId: grant.keyId, arn: KEY_ARN, account: ACCOUNT, policy },
          conditions: requestConditions({
            principal: CALLER,
            now: new Date(0),
            sourceIp: "127.0.0.1",
            secureTransport: true,
            encryptionContext: ctx,
          }),
        }).allowed;
        return byPolicy === constraintsAllow(grant.constraints, ctx);
      }),
      { numRuns: 2000 },
    );
  });

  it("{Tenant: B, tenant: A} does not satisfy EncryptionContextEquals {tenant: A}, in either order", () => {
    const equals = { EncryptionContextEquals: { tenant: "A" } };
    expect(constraintsAllow(equals, { tenant: "A" })).toBe(true);
    expect(constraintsAllow(equals, { TENANT: "A" })).toBe(true);
    expect(constraintsAllow(equals, { Tenant: "B", tenant: "A" })).toBe(false);
    expect(constraintsAllow(equals, { tenant: "A", Tenant: "B" })).toBe(false);
    expect(constraintsAllow(equals, { tenant: "A", Tenant: "A" })).toBe(false);
  });
});

describe("kms:MultiRegion", () => {
  it("is true for a multi-Region key and false for any other", () => {
    const facts = (multiRegion: boolean) =>
      requestConditions({
        principal: CALLER,
        now: new Date(0),
        sourceIp: "127.0.0.1",
        secureTransport: true,
        key: {
          arn: KEY_ARN,
          keySpec: "SYMMETRIC_DEFAULT",
          keyUsage: "ENCRYPT_DECRYPT",
          origin: "AWS_KMS",
          tags: [],
          ...(multiRegion && { multiRegion: { primaryRegion: "us-east-1", replicaRegions: [] } }),
        },
      }).get("kms:multiregion");
    expect([facts(true), facts(false)]).toEqual([["true"], ["false"]]);
  });
});
