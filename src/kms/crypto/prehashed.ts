/**
 * Signing a digest the caller already computed (Sign/Verify with MessageType DIGEST).
 * node:crypto's sign() always hashes its input (a null algorithm means the key's
 * default digest, SHA-256, not "no digest"), so the hash step is skipped here:
 *
 * - RSASSA-PKCS1-v1_5: the private-key operation with PKCS#1 type-1 padding over
 *   DigestInfo(hash OID, digest) — RFC 8017 §9.2 — via privateEncrypt.
 * - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 §9.1, MGF1 with the same hash, salt length
 *   = hash length as AWS KMS uses) here, then the raw RSA private-key operation.
 * - ECDSA: @noble/curves (audited, constant time) signs the digest as given
 *   (`prehash: false`) and verifies with the public key only.
 *
 * Every path is checked against OpenSSL (`openssl pkeyutl -verify` on the digest) in
 * the tests.
 */
import {
  constants,
  createHash,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import type { ECDSA } from "@noble/curves/abstract/weierstrass.js";

export type HashName = "sha256" | "sha384" | "sha512";

export const HASH_LENGTH: Readonly<Record<HashName, number>> = {
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

/** DER of DigestInfo without the digest bytes (RFC 8017 §9.2 note 1). */
const DIGEST_INFO_PREFIX: Readonly<Record<HashName, Buffer>> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
  sha512: Buffer.from("3051300d060960864801650304020305000440", "hex"),
};

const modulusBytes = (key: KeyObject): number => key.asymmetricKeyDetails!.modulusLength! / 8;

// ---------------------------------------------------------------------------
// RSASSA-PKCS1-v1_5

/** What RSASSA-PKCS1-v1_5 over a digest encrypts with the private key (RSA_PKCS1_PADDING). */
export const rsaPkcs1DigestInfo = (hash: HashName, digest: Buffer): Buffer =>
  Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);

export function rsaPkcs1SignDigest(privateKey: KeyObject, hash: HashName, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    rsaPkcs1DigestInfo(hash, digest),
  );
}

export function rsaPkcs1VerifyDigest(
  publicKey: KeyObject,
  hash: HashName,
  digest: Buffer,
  signature: Buffer,
): boolean {
  if (signature.length !== modulusBytes(publicKey)) return false;
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  const expected = Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
  return recovered.length === expected.length && timingSafeEqual(recovered, expected);
}

// ---------------------------------------------------------------------------
// RSASSA-PSS

function mgf1(hash: HashName, seed: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let at = 0, i = 0; at < length; i++) {
    counter.writeUInt32BE(i);
    at += createHash(hash).update(seed).update(counter).digest().copy(out, at);
  }
  return out;
}

function pssHash(hash: HashName, digest: Buffer, salt: Buffer): Buffer {
  return createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
}

/** EMSA-PSS-ENCODE with sLen = hLen, left-padded to the modulus size. */
function pssEncode(hash: HashName, digest: Buffer, modBits: number, salt: Buffer): Buffer {
  const hLen = HASH_LENGTH[hash];
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const h = pssHash(hash, digest, salt);
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - salt.length - hLen - 2] = 0x01;
  salt.copy(db, db.length - salt.length);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >>> (8 * emLen - emBits);
  const k = Math.ceil(modBits / 8);
  const out = Buffer.alloc(k);
  Buffer.concat([db, h, Buffer.from([0xbc])]).copy(out, k - emLen);
  return out;
}

/** What RSASSA-PSS over a digest encrypts with the private key (RSA_NO_PADDING): EM with a fresh salt. */
export function rsaPssEncodedDigest(privateKey: KeyObject, hash: HashName, digest: Buffer): Buffer {
  const modBits = privateKey.asymmetricKeyDetails!.modulusLength!;
  return pssEncode(hash, digest, modBits, randomBytes(HASH_LENGTH[hash]));
}

export function rsaPssSignDigest(privateKey: KeyObject, hash: HashName, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_NO_PADDING },
    rsaPssEncodedDigest(privateKey, hash, digest),
  );
}

export function rsaPssVerifyDigest(
  publicKey: KeyObject,
  hash: HashName,
  digest: Buffer,
  signature: Buffer,
): boolean {
  const modBits = publicKey.asymmetricKeyDetails!.modulusLength!;
  if (signature.length !== modulusBytes(publicKey)) return false;
  let em: Buffer;
  try {
    em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return false;
  }
  const hLen = HASH_LENGTH[hash];
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (em.length < emLen) return false;
  // Leading bytes beyond emLen must be zero.
  for (let i = 0; i < em.length - emLen; i++) if (em[i] !== 0) return false;
  em = em.subarray(em.length - emLen);
  if (emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >>> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(hash, h, maskedDb.length);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0]! &= topMask;
  const psLen = emLen - 2 * hLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - hLen);
  return timingSafeEqual(pssHash(hash, digest, salt), h);
}

// ---------------------------------------------------------------------------
// ECDSA over a given digest: @noble/curves (audited, constant-time scalar
// multiplication), because node:crypto cannot skip the hash step for ECDSA.

let ecdsaCurves: ReadonlyMap<string, ECDSA> | undefined;

/**
 * Loads @noble/curves (about 5 MB of resident memory) the first time an ECDSA DIGEST
 * request needs it, not at start-up: awaited by Sign and Verify (signingKey.ts) before
 * they call `ecdsaSignDigest`/`ecdsaVerifyDigest`, which are synchronous.
 */
export async function loadEcdsaCurves(): Promise<void> {
  if (ecdsaCurves) return;
  const [{ p256, p384, p521 }, { secp256k1 }] = await Promise.all([
    import("@noble/curves/nist.js"),
    import("@noble/curves/secp256k1.js"),
  ]);
  ecdsaCurves = new Map<string, ECDSA>([
    ["prime256v1", p256],
    ["secp384r1", p384],
    ["secp521r1", p521],
    ["secp256k1", secp256k1],
  ]);
}

function ecdsaCurve(key: KeyObject): ECDSA | undefined {
  if (!ecdsaCurves) throw new Error("ECDSA over a digest needs loadEcdsaCurves() first");
  return ecdsaCurves.get(key.asymmetricKeyDetails?.namedCurve ?? "");
}

/** The raw scalar (sign) or uncompressed point (verify) of a KeyObject, read once per object. */
const rawKeys = new WeakMap<KeyObject, Uint8Array>();

function rawKey(key: KeyObject): Uint8Array {
  let raw = rawKeys.get(key);
  if (raw === undefined) {
    const jwk = key.export({ format: "jwk" });
    raw =
      key.type === "private"
        ? Buffer.from(jwk.d!, "base64url")
        : Buffer.concat([
            Buffer.of(0x04),
            Buffer.from(jwk.x!, "base64url"),
            Buffer.from(jwk.y!, "base64url"),
          ]);
    rawKeys.set(key, raw);
  }
  return raw;
}

/**
 * DER ECDSA-Sig-Value over the digest as given. `lowS: false`: AWS KMS does not
 * normalise s (not for the NIST curves, not for secp256k1), so neither do we; k is
 * RFC 6979 hedged with fresh randomness (`extraEntropy`), like AWS's randomised k.
 */
export function ecdsaSignDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const curve = ecdsaCurve(privateKey);
  if (!curve) throw new RangeError("not an ECDSA signing key");
  return Buffer.from(
    curve.sign(digest, rawKey(privateKey), {
      prehash: false,
      lowS: false,
      format: "der",
      extraEntropy: true,
    }),
  );
}

/**
 * Verifies a DER ECDSA signature over a digest with the public key only. High-s
 * signatures verify, as they do in OpenSSL and AWS KMS; anything that is not strict
 * DER with 0 < r, s < n does not.
 */
export function ecdsaVerifyDigest(
  publicKey: KeyObject,
  digest: Buffer,
  signature: Buffer,
): boolean {
  const curve = ecdsaCurve(publicKey);
  if (!curve) return false;
  try {
    return curve.verify(signature, digest, rawKey(publicKey), {
      prehash: false,
      lowS: false,
      format: "der",
    });
  } catch {
    return false;
  }
}
