import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gcmOpen, gcmSeal, type BlockEncryptor } from "./gcmOverBlockCipher.js";

// node:crypto's AES-256-ECB stands in for the HSM's CKM_AES_ECB; its AES-256-GCM is the reference.
function ecbOracle(key: Buffer): BlockEncryptor & { calls: number } {
  const oracle = Object.assign(
    async (blocks: Buffer) => {
      oracle.calls++;
      const c = createCipheriv("aes-256-ecb", key, null).setAutoPadding(false);
      return Buffer.concat([c.update(blocks), c.final()]);
    },
    { calls: 0 },
  );
  return oracle;
}

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const fixed = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));

describe("AES-GCM over a block-cipher oracle", () => {
  it("seals exactly what node's AES-256-GCM produces, and node opens it", async () => {
    await fc.assert(
      fc.asyncProperty(
        fixed(32),
        fixed(12),
        bytes(300),
        bytes(80),
        async (key, iv, plaintext, aad) => {
          const sealed = await gcmSeal(ecbOracle(key), iv, plaintext, aad);
          const c = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
          const reference = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
          expect(sealed.equals(reference)).toBe(true);
          const d = createDecipheriv("aes-256-gcm", key, iv)
            .setAAD(aad)
            .setAuthTag(sealed.subarray(-16));
          const opened = Buffer.concat([d.update(sealed.subarray(0, -16)), d.final()]);
          expect(opened.equals(plaintext)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("opens node's AES-256-GCM output and refuses any flipped bit or other AAD", async () => {
    await fc.assert(
      fc.asyncProperty(
        fixed(32),
        fixed(12),
        bytes(200),
        bytes(40),
        fc.nat(),
        async (key, iv, plaintext, aad, flipAt) => {
          const c = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
          const sealed = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
          const oracle = ecbOracle(key);
          expect((await gcmOpen(oracle, iv, sealed, aad))?.equals(plaintext)).toBe(true);
          const tampered = Buffer.from(sealed);
          tampered[flipAt % tampered.length]! ^= 1 << (flipAt % 8);
          expect(await gcmOpen(oracle, iv, tampered, aad)).toBeUndefined();
          expect(await gcmOpen(oracle, iv, sealed, Buffer.concat([aad, Buffer.of(0)]))).toBe(
            undefined,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it("asks the block cipher once per seal and once per open", async () => {
    const oracle = ecbOracle(randomBytes(32));
    const iv = randomBytes(12);
    const sealed = await gcmSeal(oracle, iv, randomBytes(2400), Buffer.from("ctx"));
    await gcmOpen(oracle, iv, sealed, Buffer.from("ctx"));
    expect(oracle.calls).toBe(2);
  });

  it("refuses an IV that is not 12 bytes and a blob shorter than a tag", async () => {
    const oracle = ecbOracle(randomBytes(32));
    await expect(
      gcmSeal(oracle, randomBytes(16), Buffer.alloc(1), Buffer.alloc(0)),
    ).rejects.toThrow(/12 bytes/);
    expect(await gcmOpen(oracle, randomBytes(12), Buffer.alloc(15), Buffer.alloc(0))).toBe(
      undefined,
    );
  });
});
