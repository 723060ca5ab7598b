import {
  constants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  sign,
  verify,
  privateEncrypt,
} from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { oaepDecryptCall } from "./asymmetric.js";
import { PrivateKeyWorkers, runPrivateKeyCall } from "./privateKeyWorkers.js";
import { signingAlgorithms, signingCall, verifyMessage } from "./signing.js";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ed = generateKeyPairSync("ed25519");
const message = Buffer.from("the message");
const pools: PrivateKeyWorkers[] = [];
const pool = (size?: number) => {
  const p = new PrivateKeyWorkers(size);
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe("PrivateKeyWorkers", () => {
  it("starts no thread until used, then signs in a worker what verifies with the public key", async () => {
    const workers = pool(2);
    expect(workers.started).toBe(0);
    for (const [name, pair] of [
      ["RSASSA_PSS_SHA_256", rsa],
      ["RSASSA_PKCS1_V1_5_SHA_384", rsa],
      ["ECDSA_SHA_256", ec],
      ["ED25519_SHA_512", ed],
    ] as const) {
      const info = signingAlgorithms[name]!;
      const call = signingCall(info, pair.privateKey, message, false)!;
      const signature = (await workers.run(call))!;
      expect(verifyMessage(info, pair, message, false, signature), name).toBe(true);
    }
    expect(workers.started).toBeGreaterThanOrEqual(1);
  });

  it("signs digests (the EM or DigestInfo made here, the private-key step in a worker)", async () => {
    const workers = pool(1);
    const digest = Buffer.alloc(32, 7);
    for (const name of ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"]) {
      const info = signingAlgorithms[name]!;
      const signature = (await workers.run(signingCall(info, rsa.privateKey, digest, true)!))!;
      expect(verifyMessage(info, rsa, digest, true, signature), name).toBe(true);
    }
    expect(
      signingCall(signingAlgorithms["ECDSA_SHA_256"]!, ec.privateKey, digest, true),
    ).toBeUndefined();
  });

  it("decrypts OAEP in a worker; a ciphertext that does not decrypt gives undefined", async () => {
    const workers = pool(1);
    const ct = publicEncrypt(
      { key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      message,
    );
    expect(await workers.run(oaepDecryptCall(rsa.privateKey, "RSAES_OAEP_SHA_256", ct))).toEqual(
      message,
    );
    const bad = Buffer.from(ct);
    bad[10]! ^= 1;
    expect(
      await workers.run(oaepDecryptCall(rsa.privateKey, "RSAES_OAEP_SHA_256", bad)),
    ).toBeUndefined();
  });

  it("answers many calls at once, each with its own result, across the workers", async () => {
    const workers = pool(2);
    const messages = Array.from({ length: 40 }, (_, i) => Buffer.from(`m${i}`));
    const info = signingAlgorithms["RSASSA_PKCS1_V1_5_SHA_256"]!;
    const signatures = await Promise.all(
      messages.map((m) => workers.run(signingCall(info, rsa.privateKey, m, false)!)),
    );
    expect(workers.started).toBe(2);
    signatures.forEach((s, i) => {
      expect(verify("sha256", messages[i]!, rsa.publicKey, s!)).toBe(true);
      // PKCS#1 v1.5 is deterministic: the same signature as made here.
      expect(s).toEqual(sign("sha256", messages[i]!, rsa.privateKey));
    });
  });

  it("makes the same call on the event loop with runPrivateKeyCall, and refuses work once closed", async () => {
    const crypto = { sign, privateEncrypt, privateDecrypt };
    const ct = publicEncrypt(
      { key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      message,
    );
    expect(
      runPrivateKeyCall(crypto, oaepDecryptCall(rsa.privateKey, "RSAES_OAEP_SHA_1", ct)),
    ).toEqual(message);
    const workers = pool(1);
    await workers.close();
    await expect(
      workers.run(oaepDecryptCall(rsa.privateKey, "RSAES_OAEP_SHA_1", ct)),
    ).rejects.toThrow(/closed/);
  });
});
