import {
  createHmac,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ecdhSharedSecret,
  generateAsymmetricKeyPair,
  oaepDecrypt,
  oaepEncrypt,
  oaepMaxPlaintext,
  parsePeerPublicKey,
  parsePrivateKey,
} from "./asymmetric.js";
import { computeMac, hmacSpecs, macMatches } from "./hmac.js";
import { generateKeyMaterial } from "./keyMaterial.js";
import { pooledRandom } from "./random.js";

describe("key generation", () => {
  it("RSA_4096 generation does not block the event loop", async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const started = Date.now();
    const material = await generateKeyMaterial("RSA_4096", pooledRandom());
    const elapsed = Date.now() - started;
    clearInterval(ticker);
    delay.disable();
    const pair = parsePrivateKey(material);
    expect(pair.privateKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    // Timers kept firing while the key was generated on the thread pool.
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 50));
    expect(delay.max / 1e6).toBeLessThan(500);
    // RSA-4096 generation is a random prime search: a second or two when the machine is
    // idle, more than vitest's default 5 s on a loaded one. What is asserted is the event
    // loop, not the generation time.
  }, 60_000);

  it("material per spec: 32 bytes symmetric, hash-length HMAC keys, PKCS#8 for key pairs", async () => {
    const random = pooledRandom();
    expect((await generateKeyMaterial("SYMMETRIC_DEFAULT", random)).length).toBe(32);
    for (const [spec, { keyBytes }] of Object.entries(hmacSpecs))
      expect((await generateKeyMaterial(spec, random)).length).toBe(keyBytes);
    for (const [spec, type, detail] of [
      ["ECC_NIST_P256", "ec", "prime256v1"],
      ["ECC_NIST_P384", "ec", "secp384r1"],
      ["ECC_NIST_P521", "ec", "secp521r1"],
      ["ECC_SECG_P256K1", "ec", "secp256k1"],
      ["ECC_NIST_EDWARDS25519", "ed25519", undefined],
    ] as const) {
      const { privateKey, publicKeyDer } = parsePrivateKey(await generateKeyMaterial(spec, random));
      expect(privateKey.asymmetricKeyType).toBe(type);
      expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe(detail);
      expect(
        createPublicKey({ key: publicKeyDer, format: "der", type: "spki" }).asymmetricKeyType,
      ).toBe(type);
    }
  });
});

describe("RSAES-OAEP", () => {
  it("has AWS's plaintext limits", () => {
    expect(oaepMaxPlaintext("RSA_2048", "RSAES_OAEP_SHA_1")).toBe(214);
    expect(oaepMaxPlaintext("RSA_2048", "RSAES_OAEP_SHA_256")).toBe(190);
    expect(oaepMaxPlaintext("RSA_3072", "RSAES_OAEP_SHA_1")).toBe(342);
    expect(oaepMaxPlaintext("RSA_3072", "RSAES_OAEP_SHA_256")).toBe(318);
    expect(oaepMaxPlaintext("RSA_4096", "RSAES_OAEP_SHA_1")).toBe(470);
    expect(oaepMaxPlaintext("RSA_4096", "RSAES_OAEP_SHA_256")).toBe(446);
  });

  it("round-trips any plaintext up to the limit, and fails cleanly on tampering (property)", async () => {
    const { privateKey, publicKey } = parsePrivateKey(
      (await generateAsymmetricKeyPair("RSA_2048")).privateKeyDer,
    );
    fc.assert(
      fc.property(
        fc.constantFrom("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"),
        fc.uint8Array({ minLength: 1, maxLength: 190 }),
        fc.nat(255),
        (algorithm, plaintext, at) => {
          const ct = oaepEncrypt(publicKey, algorithm, plaintext);
          if (!oaepDecrypt(privateKey, algorithm, ct)?.equals(Buffer.from(plaintext))) return false;
          const bad = Buffer.from(ct);
          bad[at]! ^= 1;
          return oaepDecrypt(privateKey, algorithm, bad) === undefined;
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("ECDH", () => {
  it("derives the same secret as the peer; refuses other curves and non-EC keys", async () => {
    const ours = parsePrivateKey((await generateAsymmetricKeyPair("ECC_NIST_P384")).privateKeyDer);
    const peer = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    const peerPublic = parsePeerPublicKey(
      peer.publicKey.export({ type: "spki", format: "der" }),
      ours.privateKey,
    )!;
    expect(
      ecdhSharedSecret(ours.privateKey, peerPublic).equals(
        diffieHellman({ privateKey: peer.privateKey, publicKey: ours.publicKey }),
      ),
    ).toBe(true);
    const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    for (const other of [p256, rsa])
      expect(
        parsePeerPublicKey(other.export({ type: "spki", format: "der" }), ours.privateKey),
      ).toBeUndefined();
    expect(parsePeerPublicKey(randomBytes(91), ours.privateKey)).toBeUndefined();
  });
});

describe("HMAC", () => {
  it("is RFC 2104 HMAC; any change to MAC or message fails verification (property)", () => {
    const spec = hmacSpecs.HMAC_256!;
    const raw = randomBytes(spec.keyBytes);
    const key = createSecretKey(raw);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(255), (message, bit) => {
        const mac = computeMac(spec, key, message);
        if (!mac.equals(createHmac("sha256", raw).update(message).digest())) return false;
        const bad = Buffer.from(mac);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        return (
          macMatches(spec, key, message, mac) &&
          !macMatches(spec, key, message, bad) &&
          !macMatches(spec, key, message, mac.subarray(1))
        );
      }),
      { numRuns: 100 },
    );
  });
});
