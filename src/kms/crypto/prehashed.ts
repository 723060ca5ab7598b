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
 *   arithmetic never sees k or d alone. Verification uses plain affine/Jacobian
 *   arithmetic on public values only.
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
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly n: bigint;
  readonly bytes: number;
}

const hex = (h: string): bigint => BigInt(`0x${h}`);

/** Domain parameters, from `openssl ecparam -param_enc explicit -text`. */
const CURVES: Readonly<Record<string, Curve>> = {
  prime256v1: {
    p: hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
    a: hex("ffffffff00000001000000000000000000000000fffffffffffffffffffffffc"),
    b: hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
    gx: hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
    gy: hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    n: hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    bytes: 32,
  },
  secp384r1: {
    p: hex(
      "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    ),
    a: hex(
      "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
    ),
    b: hex(
      "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    ),
    gx: hex(
      "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    ),
    gy: hex(
      "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    ),
    n: hex(
      "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    ),
    bytes: 48,
  },
  secp521r1: {
    p: (1n << 521n) - 1n,
    a: (1n << 521n) - 4n,
    b: hex(
      "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
    ),
    gx: hex(
      "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
    ),
    gy: hex(
      "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
    ),
    n: hex(
      "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    ),
    bytes: 66,
  },
  secp256k1: {
    p: hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"),
    a: 0n,
    b: 7n,
    gx: hex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    gy: hex("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"),
    n: hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
    bytes: 32,
  },
};

export const ecdsaCurveParameters = (curve: string): Curve | undefined => CURVES[curve];

const mod = (x: bigint, m: bigint): bigint => {
  const r = x % m;
  return r < 0n ? r + m : r;
};

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  base = mod(base, m);
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}

/** Inverse modulo a prime. */
const modInv = (x: bigint, m: bigint): bigint => modPow(x, m - 2n, m);

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
  const ecdh = createECDH(curveName);
  for (;;) {
    const k = randomScalar(n, curve.bytes);
    ecdh.setPrivateKey(toBytes(k, curve.bytes));
    const point = ecdh.getPublicKey(); // 0x04 ‖ x ‖ y, computed by OpenSSL
    const r = toBigInt(point.subarray(1, 1 + curve.bytes)) % n;
    if (r === 0n) continue;
    // s = (k·b)⁻¹ · (e·b + r·b·d) = k⁻¹(e + r·d): only blinded values meet k and d.
    const blind = randomScalar(n, curve.bytes);
    const kbInv = modInv(mod(k * blind, n), n);
    const s = mod(kbInv * mod(mod(e * blind, n) + mod(mod(r * blind, n) * d, n), n), n);
    if (s === 0n) continue;
    return encodeEcdsaDer(r, s);
  }
}

// Jacobian coordinates (X, Y, Z) ↔ affine (X/Z², Y/Z³); Z = 0 is the point at infinity.
type Jacobian = readonly [bigint, bigint, bigint];
const INFINITY: Jacobian = [0n, 1n, 0n];

function double(c: Curve, [x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) return INFINITY;
  const { p } = c;
  const yy = (y * y) % p;
  const s = (4n * x * yy) % p;
  const zz = (z * z) % p;
  const m = mod(3n * x * x + c.a * zz * zz, p);
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * yy * yy, p);
  const z3 = mod(2n * y * z, p);
  return [x3, y3, z3];
}

function add(c: Curve, P: Jacobian, Q: Jacobian): Jacobian {
  if (P[2] === 0n) return Q;
  if (Q[2] === 0n) return P;
  const { p } = c;
  const z1z1 = (P[2] * P[2]) % p;
  const z2z2 = (Q[2] * Q[2]) % p;
  const u1 = (P[0] * z2z2) % p;
  const u2 = (Q[0] * z1z1) % p;
  const s1 = (P[1] * Q[2] * z2z2) % p;
  const s2 = (Q[1] * P[2] * z1z1) % p;
  if (u1 === u2) return s1 === s2 ? double(c, P) : INFINITY;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = (h * h) % p;
  const hhh = (h * hh) % p;
  const v = (u1 * hh) % p;
  const x3 = mod(r * r - hhh - 2n * v, p);
  const y3 = mod(r * (v - x3) - s1 * hhh, p);
  const z3 = (P[2] * Q[2] * h) % p;
  return [x3, y3, z3];
}

/** u1·G + u2·Q by simultaneous double-and-add (public inputs only, so variable time is fine). */
function twoScalarMultiply(c: Curve, u1: bigint, u2: bigint, Q: Jacobian): Jacobian {
  const G: Jacobian = [c.gx, c.gy, 1n];
  const GQ = add(c, G, Q);
  let R = INFINITY;
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i--) {
    R = double(c, R);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 && b2) R = add(c, R, GQ);
    else if (b1) R = add(c, R, G);
    else if (b2) R = add(c, R, Q);
  }
  return R;
}

export function ecdsaVerifyDigest(
  publicKey: KeyObject,
  digest: Buffer,
  signature: Buffer,
): boolean {
  const curve = CURVES[publicKey.asymmetricKeyDetails?.namedCurve ?? ""];
  if (!curve) return false;
  const sig = decodeEcdsaDer(signature);
  if (!sig) return false;
  const { r, s } = sig;
  const { n, p } = curve;
  if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
  const jwk = publicKey.export({ format: "jwk" });
  const Q: Jacobian = [
    toBigInt(Buffer.from(jwk.x!, "base64url")),
    toBigInt(Buffer.from(jwk.y!, "base64url")),
    1n,
  ];
  const e = digestToInteger(digest, n);
  const w = modInv(s, n);
  const R = twoScalarMultiply(curve, mod(e * w, n), mod(r * w, n), Q);
  if (R[2] === 0n) return false;
  const zInv = modInv(R[2], p);
  const x = mod(R[0] * zInv * zInv, p);
  return x % n === r;
}
