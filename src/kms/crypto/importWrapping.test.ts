import {
  constants,
  createCipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
  createSecretKey,
  createDecipheriv,
} from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  generateWrappingKeyPair,
  ImportTokenError,
  ImportUnwrapError,
  materialFingerprint,
  openImportToken,
  sealImportToken,
  unwrapKeyMaterial,
  type WrappingKeyPair,
} from "./importWrapping.js";
import { PrivateKeyWorkers } from "./privateKeyWorkers.js";

/** What a client does with the public key, per AWS's documented layouts. */
function clientWrap(publicKeyDer: Buffer, algorithm: string, material: Buffer): Buffer {
  const key = createPublicKey({ key: publicKeyDer, format: "der", type: "spki" });
  const oaepHash = algorithm.endsWith("SHA_1") ? "sha1" : "sha256";
  const oaep = (data: Buffer) =>
    publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (algorithm.startsWith("RSAES_OAEP")) return oaep(material);
  const aesKey = randomBytes(32);
  const kwp = createCipheriv("id-aes256-wrap-pad", aesKey, Buffer.from("a65959a6", "hex"));
  return Buffer.concat([oaep(aesKey), kwp.update(material), kwp.final()]);
}

const ALGORITHMS = [
  "RSAES_OAEP_SHA_1",
  "RSAES_OAEP_SHA_256",
  "RSA_AES_KEY_WRAP_SHA_1",
  "RSA_AES_KEY_WRAP_SHA_256",
];

let pair: WrappingKeyPair;
beforeAll(async () => {
  pair = await generateWrappingKeyPair("RSA_2048");
});

describe("unwrapKeyMaterial", () => {
  it.each(ALGORITHMS)("recovers material wrapped with %s", async (algorithm) => {
    const material = randomBytes(32);
    const wrapped = clientWrap(pair.publicKeyDer, algorithm, material);
    expect(await unwrapKeyMaterial(pair.privateKeyDer, algorithm, wrapped)).toEqual(material);
  });

  it("makes the RSA-OAEP decryption through the runner it is given (a worker in serve)", async () => {
    const workers = new PrivateKeyWorkers(1);
    try {
      const calls: string[] = [];
      const material = randomBytes(32);
      const wrapped = clientWrap(pair.publicKeyDer, "RSA_AES_KEY_WRAP_SHA_256", material);
      const unwrapped = await unwrapKeyMaterial(
        pair.privateKeyDer,
        "RSA_AES_KEY_WRAP_SHA_256",
        wrapped,
        (call) => (calls.push(call.op), workers.run(call)),
      );
      expect(unwrapped).toEqual(material);
      expect(calls).toEqual(["privateDecrypt"]);
      expect(workers.started).toBe(1);
    } finally {
      await workers.close();
    }
  });

  it("recovers material of any length under RSA-AES key wrap (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (bytes) => {
        const material = Buffer.from(bytes);
        const wrapped = clientWrap(pair.publicKeyDer, "RSA_AES_KEY_WRAP_SHA_256", material);
        expect(
          await unwrapKeyMaterial(pair.privateKeyDer, "RSA_AES_KEY_WRAP_SHA_256", wrapped),
        ).toEqual(material);
      }),
      { numRuns: 25 },
    );
  });

  it("rejects material wrapped with another algorithm, or altered", async () => {
    const material = randomBytes(32);
    const sha1 = clientWrap(pair.publicKeyDer, "RSAES_OAEP_SHA_1", material);
    await expect(unwrapKeyMaterial(pair.privateKeyDer, "RSAES_OAEP_SHA_256", sha1)).rejects.toThrow(
      ImportUnwrapError,
    );
    const kwp = clientWrap(pair.publicKeyDer, "RSA_AES_KEY_WRAP_SHA_256", material);
    kwp[kwp.length - 1]! ^= 1;
    await expect(
      unwrapKeyMaterial(pair.privateKeyDer, "RSA_AES_KEY_WRAP_SHA_256", kwp),
    ).rejects.toThrow(ImportUnwrapError);
    await expect(
      unwrapKeyMaterial(pair.privateKeyDer, "RSAES_OAEP_SHA_256", Buffer.alloc(10)),
    ).rejects.toThrow(ImportUnwrapError);
  });
});

describe("import tokens", () => {
  // A stand-in root key: AES-256-GCM with the context as AAD.
  const rootKey = createSecretKey(randomBytes(32));
  const wrap = async (plaintext: Buffer, context: string) => {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", rootKey, iv).setAAD(Buffer.from(context));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([iv, body, c.getAuthTag()]);
  };
  const unwrap = async (wrapped: Buffer, context: string) => {
    const d = createDecipheriv("aes-256-gcm", rootKey, wrapped.subarray(0, 12)).setAAD(
      Buffer.from(context),
    );
    d.setAuthTag(wrapped.subarray(wrapped.length - 16));
    return Buffer.concat([d.update(wrapped.subarray(12, wrapped.length - 16)), d.final()]);
  };
  const claims = {
    tokenId: "ab".repeat(16),
    wrappingAlgorithm: "RSAES_OAEP_SHA_256",
    wrappingKeySpec: "RSA_2048",
    expiresAt: 1_800_000_000_000,
  };

  it("round-trips for the key it was made for, and carries no key material", async () => {
    const token = await sealImportToken(wrap, "key-a", claims);
    expect(await openImportToken(unwrap, "key-a", token)).toEqual(claims);
    expect(token.includes(pair.privateKeyDer.subarray(40, 72))).toBe(false);
  });

  it("fails to open for another key, or when altered", async () => {
    const token = await sealImportToken(wrap, "key-a", claims);
    await expect(openImportToken(unwrap, "key-b", token)).rejects.toThrow(ImportTokenError);
    const altered = Buffer.from(token);
    altered[20]! ^= 1;
    await expect(openImportToken(unwrap, "key-a", altered)).rejects.toThrow(ImportTokenError);
    await expect(openImportToken(unwrap, "key-a", Buffer.of(9, 9))).rejects.toThrow(
      ImportTokenError,
    );
  });
});

describe("materialFingerprint", () => {
  it("is 64 hex characters, the same for the same material, different otherwise", () => {
    const a = randomBytes(32);
    expect(materialFingerprint(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(materialFingerprint(Buffer.from(a))).toBe(materialFingerprint(a));
    expect(materialFingerprint(randomBytes(32))).not.toBe(materialFingerprint(a));
  });
});
