import { execFileSync } from "node:child_process";
import { createHash, verify, constants, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DER } from "@noble/curves/abstract/weierstrass.js";
import { p256, p521 } from "@noble/curves/nist.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asymmetricSpecs, generateAsymmetricKeyPair, parsePrivateKey } from "./asymmetric.js";
import { loadEcdsaCurves } from "./prehashed.js";
import { digestLength, signingAlgorithms, signMessage, verifyMessage } from "./signing.js";

const dir = mkdtempSync(join(tmpdir(), "keyhaven-signing-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// What Sign and Verify await before a DIGEST request with an ECDSA key (signingKey.ts).
beforeAll(loadEcdsaCurves);

const pairs = new Map<string, ReturnType<typeof parsePrivateKey>>();
async function pair(spec: string) {
  let p = pairs.get(spec);
  if (!p) {
    const generated = await generateAsymmetricKeyPair(spec);
    p = parsePrivateKey(generated.privateKeyDer);
    expect(p.publicKeyDer.equals(generated.publicKeyDer)).toBe(true);
    pairs.set(spec, p);
  }
  return p;
}

/** `openssl pkeyutl -verify` on a digest: the signature checked by OpenSSL without hashing. */
function opensslVerifiesDigest(
  publicKeyDer: Buffer,
  algorithm: string,
  digest: Buffer,
  signature: Buffer,
): boolean {
  const info = signingAlgorithms[algorithm]!;
  const pub = join(dir, "pub.der");
  const dig = join(dir, "digest.bin");
  const sig = join(dir, "sig.bin");
  writeFileSync(pub, publicKeyDer);
  writeFileSync(dig, digest);
  writeFileSync(sig, signature);
  const opts = ["-pkeyopt", `digest:${info.hash}`];
  if (info.scheme === "rsa-pss")
    opts.push("-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:digest");
  try {
    const out = execFileSync(
      "openssl",
      [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        pub,
        "-in",
        dig,
        "-sigfile",
        sig,
        ...opts,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    return out.toString().includes("Signature Verified Successfully");
  } catch {
    return false;
  }
}

const cases: [string, string][] = [];
for (const [spec, alg] of [
  ["RSA_2048", "RSASSA_PSS_SHA_256"],
  ["RSA_2048", "RSASSA_PSS_SHA_384"],
  ["RSA_3072", "RSASSA_PSS_SHA_512"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"],
  ["RSA_3072", "RSASSA_PKCS1_V1_5_SHA_512"],
  ["ECC_NIST_P256", "ECDSA_SHA_256"],
  ["ECC_NIST_P384", "ECDSA_SHA_384"],
  ["ECC_NIST_P521", "ECDSA_SHA_512"],
  ["ECC_SECG_P256K1", "ECDSA_SHA_256"],
] as const)
  cases.push([spec, alg]);

describe("signing with MessageType DIGEST", () => {
  it.each(cases)(
    "%s %s: OpenSSL verifies the digest signature, node verifies it as RAW",
    async (spec, alg) => {
      const { privateKey, publicKey, publicKeyDer } = await pair(spec);
      const info = signingAlgorithms[alg]!;
      const message = Buffer.from(`message for ${alg}`);
      const digest = createHash(info.hash).update(message).digest();
      expect(digest.length).toBe(digestLength(info));
      const signature = signMessage(info, privateKey, digest, true);
      expect(opensslVerifiesDigest(publicKeyDer, alg, digest, signature)).toBe(true);
      // The same signature is a RAW signature of the message.
      expect(verifyMessage(info, { publicKey }, message, false, signature)).toBe(true);
      expect(verifyMessage(info, { publicKey }, digest, true, signature)).toBe(true);
      // A different digest does not verify.
      const other = Buffer.from(digest);
      other[0]! ^= 1;
      expect(verifyMessage(info, { publicKey }, other, true, signature)).toBe(false);
      expect(opensslVerifiesDigest(publicKeyDer, alg, other, signature)).toBe(false);
    },
  );

  it.each(cases)(
    "%s %s: RAW signatures verify through the DIGEST path and through OpenSSL",
    async (spec, alg) => {
      const { privateKey, publicKey, publicKeyDer } = await pair(spec);
      const info = signingAlgorithms[alg]!;
      const message = Buffer.from(`raw message for ${alg}`);
      const signature = signMessage(info, privateKey, message, false);
      const digest = createHash(info.hash).update(message).digest();
      expect(verifyMessage(info, { publicKey }, digest, true, signature)).toBe(true);
      expect(opensslVerifiesDigest(publicKeyDer, alg, digest, signature)).toBe(true);
    },
  );

  it("ECDSA digest signatures round-trip for any digest (property)", async () => {
    const { privateKey, publicKey } = await pair("ECC_NIST_P256");
    const info = signingAlgorithms.ECDSA_SHA_256!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const digest = Buffer.from(bytes);
        const signature = signMessage(info, privateKey, digest, true);
        // node's verify hashes; so check with our verifier and a strict DER re-encoding.
        const decoded = DER.toSig(signature);
        return (
          verifyMessage(info, { publicKey }, digest, true, signature) &&
          Buffer.from(DER.hexFromSig(decoded), "hex").equals(signature)
        );
      }),
      { numRuns: 50 },
    );
  });

  it("flipping any bit of a signature makes it invalid", async () => {
    for (const alg of ["ECDSA_SHA_256", "RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"]) {
      const spec = alg.startsWith("ECDSA") ? "ECC_NIST_P256" : "RSA_2048";
      const { privateKey, publicKey } = await pair(spec);
      const info = signingAlgorithms[alg]!;
      const digest = createHash("sha256").update("x").digest();
      const signature = signMessage(info, privateKey, digest, true);
      fc.assert(
        fc.property(fc.nat(signature.length * 8 - 1), (bit) => {
          const bad = Buffer.from(signature);
          bad[bit >> 3]! ^= 1 << (bit & 7);
          return (
            !verifyMessage(info, { publicKey }, digest, true, bad) &&
            !verifyMessage(info, { publicKey }, Buffer.from("x"), false, bad)
          );
        }),
        { numRuns: 40 },
      );
    }
  });
});

describe("ECDSA digest verification", () => {
  const der = (r: bigint, s: bigint) => Buffer.from(DER.hexFromSig({ r, s }), "hex");

  it.each([
    ["ECC_NIST_P256", "ECDSA_SHA_256", p256],
    ["ECC_NIST_P521", "ECDSA_SHA_512", p521],
  ] as const)(
    "%s: rejects another key's signature, out-of-range r/s, and accepts the low/high-s twin as OpenSSL does",
    async (spec, alg, curve) => {
      const { publicKey, publicKeyDer } = await pair(spec);
      const { privateKey } = await pair(spec);
      const other = parsePrivateKey((await generateAsymmetricKeyPair(spec)).privateKeyDer);
      const info = signingAlgorithms[alg]!;
      const digest = createHash(info.hash).update("twin").digest();
      const keys = { publicKey };
      const foreign = signMessage(info, other.privateKey, digest, true);
      expect(verifyMessage(info, keys, digest, true, foreign)).toBe(false);
      const signature = signMessage(info, privateKey, digest, true);
      const { r, s } = DER.toSig(signature);
      const n = curve.Point.CURVE().n;
      const twin = der(r, n - s);
      expect(verifyMessage(info, keys, digest, true, twin)).toBe(true);
      expect(opensslVerifiesDigest(publicKeyDer, alg, digest, twin)).toBe(true);
      for (const [badR, badS] of [
        [r + n, s],
        [r, s + n],
        [0n, s],
        [r, 0n],
      ] as const)
        expect(verifyMessage(info, keys, digest, true, der(badR, badS))).toBe(false);
      // Pure-JS curve arithmetic (noble): a few ms per P-521 verify on a quiet machine;
      // the bound only catches a pathological slowdown on a busy one.
      const started = performance.now();
      for (let i = 0; i < 10; i++) verifyMessage(info, keys, digest, true, signature);
      expect((performance.now() - started) / 10).toBeLessThan(100);
    },
  );

  it("uses the public key only: the private key handed along is never consulted", async () => {
    // The old verifier computed (u1 + u2·d)·G with the private scalar d, running
    // attacker-chosen r and s through it; with someone else's d it got every answer wrong.
    for (const [spec, alg] of cases.filter(([, a]) => a.startsWith("ECDSA"))) {
      const { privateKey, publicKey } = await pair(spec);
      const stranger = parsePrivateKey((await generateAsymmetricKeyPair(spec)).privateKeyDer);
      const info = signingAlgorithms[alg]!;
      const digest = createHash(info.hash).update(`only public ${spec}`).digest();
      const signature = signMessage(info, privateKey, digest, true);
      const mismatched = { privateKey: stranger.privateKey, publicKey };
      expect(verifyMessage(info, mismatched, digest, true, signature)).toBe(true);
    }
  });

  it("rejects non-minimal, trailing, truncated and negative DER encodings", async () => {
    const { privateKey, publicKey } = await pair("ECC_NIST_P256");
    const info = signingAlgorithms.ECDSA_SHA_256!;
    const digest = createHash("sha256").update("der").digest();
    // A signature whose s has its top bit set, so that dropping DER's 0x00 makes it negative.
    let good: Buffer;
    do good = signMessage(info, privateKey, digest, true);
    while (DER.toSig(good).s >> 255n === 0n);
    const { r, s } = DER.toSig(good);
    expect(verifyMessage(info, { publicKey }, digest, true, good)).toBe(true);
    const hex = (x: bigint) => x.toString(16).padStart(64, "0");
    const int = (body: string) => `02${(body.length / 2).toString(16).padStart(2, "0")}${body}`;
    const seq = (body: string) =>
      Buffer.from(`30${(body.length / 2).toString(16).padStart(2, "0")}${body}`, "hex");
    for (const bad of [
      Buffer.concat([good, Buffer.from([0])]), // trailing byte
      good.subarray(0, good.length - 1), // truncated
      seq(int(`0000${hex(r)}`) + int(`00${hex(s)}`)), // r with needless leading zeros
      seq(int(`00${hex(r)}`.replace(/^00(?=[0-7])/, "")) + int(hex(s))), // s negative
    ])
      expect(verifyMessage(info, { publicKey }, digest, true, bad)).toBe(false);
  });
});

describe("signing with MessageType RAW", () => {
  it("matches node:crypto's own verification for every algorithm", async () => {
    const message = Buffer.from("hello, keyhaven");
    for (const [spec, alg] of cases) {
      const { privateKey, publicKey } = await pair(spec);
      const info = signingAlgorithms[alg]!;
      const signature = signMessage(info, privateKey, message, false);
      const options: KeyObject | { key: KeyObject; padding: number; saltLength: number } =
        info.scheme === "rsa-pss"
          ? {
              key: publicKey,
              padding: constants.RSA_PKCS1_PSS_PADDING,
              saltLength: digestLength(info),
            }
          : publicKey;
      expect(verify(info.hash, message, options, signature)).toBe(true);
      if (info.scheme === "rsa-pss" || info.scheme === "rsa-pkcs1")
        expect(signature.length).toBe(asymmetricSpecs[spec]!.modulusBits! / 8);
      if (info.scheme === "ecdsa") expect(signature[0]).toBe(0x30); // DER SEQUENCE
    }
  });

  it("Ed25519 (PureEdDSA) signs and verifies; Ed25519ph is refused", async () => {
    const { privateKey, publicKey, publicKeyDer } = await pair("ECC_NIST_EDWARDS25519");
    expect(publicKeyDer.length).toBe(44);
    const message = Buffer.from("ed25519 message");
    const signature = signMessage(signingAlgorithms.ED25519_SHA_512!, privateKey, message, false);
    expect(signature.length).toBe(64);
    expect(verify(null, message, publicKey, signature)).toBe(true);
    const digest = createHash("sha512").update(message).digest();
    expect(() =>
      signMessage(signingAlgorithms.ED25519_PH_SHA_512!, privateKey, digest, true),
    ).toThrow(/Ed25519ph/);
  });

  it("Ed25519 signatures verify with OpenSSL", async () => {
    const { privateKey, publicKeyDer } = await pair("ECC_NIST_EDWARDS25519");
    const message = Buffer.from("ed25519 via openssl");
    const signature = signMessage(signingAlgorithms.ED25519_SHA_512!, privateKey, message, false);
    writeFileSync(join(dir, "ed.der"), publicKeyDer);
    writeFileSync(join(dir, "ed.msg"), message);
    writeFileSync(join(dir, "ed.sig"), signature);
    const out = execFileSync("openssl", [
      "pkeyutl",
      "-verify",
      "-pubin",
      "-keyform",
      "DER",
      "-inkey",
      join(dir, "ed.der"),
      "-rawin",
      "-in",
      join(dir, "ed.msg"),
      "-sigfile",
      join(dir, "ed.sig"),
    ]).toString();
    expect(out).toContain("Signature Verified Successfully");
  });
});
