/**
 * Signing a digest the caller already computed (Sign/Verify with MessageType DIGEST).
 * node:crypto's sign() always hashes its input (a null algorithm means the key's
 * default digest, SHA-256, not "no digest"), so the hash step is skipped here:
 *
 * - RSASSA-PKCS1-v1_5: the private-key operation with PKCS#1 type-1 padding over
 *   DigestInfo(hash OID, digest) — RFC 8017 §9.2 — via privateEncrypt.
 * - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 §9.1, MGF1 with the same hash, salt length
 *   = hash length as AWS KMS uses) here, then the raw RSA private-key operation.
 * - ECDSA: k·G comes from OpenSSL (createECDH, constant time), and
 *   s = k⁻¹(e + r·d) mod n is computed with a random blinding factor so the BigInt
 *   arithmetic never sees k or d alone. Verification needs u1·G + u2·Q; as the
 *   service holds d (Q = d·G) that is (u1 + u2·d)·G, one scalar multiplication of the
 *   generator, again by OpenSSL — milliseconds faster than curve arithmetic in BigInt.
 *
 * Every path is checked against OpenSSL (`openssl pkeyutl -verify` on the digest) in
 * the tests.
 */
import {
  constants,
  createECDH,
  createHash,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";

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

export function rsaPkcs1SignDigest(privateKey: KeyObject, hash: HashName, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]),
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

export function rsaPssSignDigest(privateKey: KeyObject, hash: HashName, digest: Buffer): Buffer {
  const modBits = privateKey.asymmetricKeyDetails!.modulusLength!;
  const em = pssEncode(hash, digest, modBits, randomBytes(HASH_LENGTH[hash]));
  return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em);
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
// ECDSA over a given digest

interface Curve {
  /** Order of the generator. */
  readonly n: bigint;
  /** Field element size in bytes (the x coordinate's length in an encoded point). */
  readonly bytes: number;
}

const hex = (h: string): bigint => BigInt(`0x${h}`);

/** Group orders, from `openssl ecparam -param_enc explicit -text`. */
const CURVES: Readonly<Record<string, Curve>> = {
  prime256v1: {
    n: hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    bytes: 32,
  },
  secp384r1: {
    n: hex(
      "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    ),
    bytes: 48,
  },
  secp521r1: {
    n: hex(
      "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    ),
    bytes: 66,
  },
  secp256k1: {
    n: hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
    bytes: 32,
  },
};

const mod = (x: bigint, m: bigint): bigint => {
  const r = x % m;
  return r < 0n ? r + m : r;
};

/** Inverse modulo m (extended Euclid); callers pass only blinded or public values. */
function modInv(x: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(x, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError("not invertible");
  return mod(s0, m);
}

const toBigInt = (bytes: Uint8Array): bigint =>
  bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);

function toBytes(x: bigint, length: number): Buffer {
  return Buffer.from(x.toString(16).padStart(length * 2, "0"), "hex");
}

/** The ECDSA integer e from a digest: its leftmost bitlen(n) bits (SEC 1 §4.1.3 step 5). */
function digestToInteger(digest: Buffer, n: bigint): bigint {
  const nBits = n.toString(2).length;
  const e = toBigInt(digest);
  const excess = digest.length * 8 - nBits;
  return excess > 0 ? e >> BigInt(excess) : e;
}

// DER encoding of ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
function derInteger(x: bigint): Buffer {
  const h = x.toString(16);
  let bytes = Buffer.from(h.length % 2 ? `0${h}` : h, "hex");
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02]), derLength(bytes.length), bytes]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

export function encodeEcdsaDer(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** Strict DER decoding; undefined for anything that is not exactly SEQUENCE { INTEGER, INTEGER }. */
export function decodeEcdsaDer(sig: Buffer): { r: bigint; s: bigint } | undefined {
  let at = 0;
  const readLength = (): number | undefined => {
    const first = sig[at++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    const count = first & 0x7f;
    if (count === 0 || count > 2) return undefined;
    let length = 0;
    for (let i = 0; i < count; i++) {
      const byte = sig[at++];
      if (byte === undefined) return undefined;
      length = (length << 8) | byte;
    }
    if (length < 0x80 || (count === 2 && length < 0x100)) return undefined; // not minimal
    return length;
  };
  const readInteger = (): bigint | undefined => {
    if (sig[at++] !== 0x02) return undefined;
    const length = readLength();
    if (length === undefined || length === 0 || at + length > sig.length) return undefined;
    const bytes = sig.subarray(at, at + length);
    at += length;
    if (bytes[0]! & 0x80) return undefined; // negative
    if (length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) return undefined; // not minimal
    return toBigInt(bytes);
  };
  if (sig[at++] !== 0x30) return undefined;
  const length = readLength();
  if (length === undefined || at + length !== sig.length) return undefined;
  const r = readInteger();
  const s = readInteger();
  if (r === undefined || s === undefined || at !== sig.length) return undefined;
  return { r, s };
}

/** The private scalar d of an EC key, read once per KeyObject. */
const scalars = new WeakMap<KeyObject, bigint>();

function privateScalar(privateKey: KeyObject): bigint {
  let d = scalars.get(privateKey);
  if (d === undefined) {
    const jwk = privateKey.export({ format: "jwk" });
    d = toBigInt(Buffer.from(jwk.d!, "base64url"));
    scalars.set(privateKey, d);
  }
  return d;
}

function randomScalar(n: bigint, bytes: number): bigint {
  for (;;) {
    const k = toBigInt(randomBytes(bytes + 8)) % n; // 64 extra bits make the bias negligible
    if (k !== 0n) return k;
  }
}

export function ecdsaSignDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const curveName = privateKey.asymmetricKeyDetails!.namedCurve!;
  const curve = CURVES[curveName]!;
  const { n } = curve;
  const d = privateScalar(privateKey);
  const e = digestToInteger(digest, n);
  for (;;) {
    const k = randomScalar(n, curve.bytes);
    const r = generatorMultipleX(curveName, curve, k) % n;
    if (r === 0n) continue;
    // s = (k·b)⁻¹ · (e·b + r·b·d) = k⁻¹(e + r·d): only blinded values meet k and d.
    const blind = randomScalar(n, curve.bytes);
    const kbInv = modInv(mod(k * blind, n), n);
    const s = mod(kbInv * mod(mod(e * blind, n) + mod(mod(r * blind, n) * d, n), n), n);
    if (s === 0n) continue;
    return encodeEcdsaDer(r, s);
  }
}

/** The x coordinate of t·G, computed by OpenSSL (constant time); t in [1, n-1]. */
function generatorMultipleX(curveName: string, curve: Curve, t: bigint): bigint {
  const ecdh = createECDH(curveName);
  ecdh.setPrivateKey(toBytes(t, curve.bytes));
  return toBigInt(ecdh.getPublicKey().subarray(1, 1 + curve.bytes));
}

/**
 * Verifies an ECDSA signature over a digest with the service's own key pair:
 * R = u1·G + u2·Q = (u1 + u2·d)·G, valid iff R is not the point at infinity and
 * x(R) ≡ r (mod n). Signatures must be strict DER with 0 < r, s < n.
 */
export function ecdsaVerifyDigest(
  privateKey: KeyObject,
  digest: Buffer,
  signature: Buffer,
): boolean {
  const curveName = privateKey.asymmetricKeyDetails?.namedCurve ?? "";
  const curve = CURVES[curveName];
  if (!curve) return false;
  const sig = decodeEcdsaDer(signature);
  if (!sig) return false;
  const { r, s } = sig;
  const { n } = curve;
  if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
  const w = modInv(s, n);
  const u1 = mod(digestToInteger(digest, n) * w, n);
  const u2 = mod(r * w, n);
  const t = mod(u1 + mod(u2 * privateScalar(privateKey), n), n);
  if (t === 0n) return false;
  return generatorMultipleX(curveName, curve, t) % n === r;
}
