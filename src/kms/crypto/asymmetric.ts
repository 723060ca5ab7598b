/**
 * Asymmetric key material: generation (async, so RSA never blocks the event loop),
 * parsing, RSAES-OAEP encryption and ECDH. Imports only node:crypto.
 *
 * Material formats, as wrapped under the root key (KeyMaterialRecord.wrapped):
 *   RSA_*, ECC_*           the private key as PKCS#8 DER
 *   HMAC_*                 the raw HMAC key bytes (see hmac.ts)
 *   SYMMETRIC_DEFAULT      32 raw AES-256 key bytes
 * Public keys travel as DER SubjectPublicKeyInfo, as AWS KMS returns them.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPair,
  privateDecrypt,
  privateEncrypt,
  publicEncrypt,
  sign,
  type KeyObject,
} from "node:crypto";
import { runPrivateKeyCall, type PrivateKeyCall } from "./privateKeyWorkers.js";

export type AsymmetricKind = "rsa" | "ec" | "ed25519";

export interface AsymmetricSpec {
  readonly kind: AsymmetricKind;
  /** RSA modulus length in bits. */
  readonly modulusBits?: number;
  /** OpenSSL curve name for EC keys. */
  readonly curve?: string;
}

/** Key specs (CreateKey KeySpec and GenerateDataKeyPair KeyPairSpec) that are key pairs. */
export const asymmetricSpecs: Readonly<Record<string, AsymmetricSpec>> = {
  RSA_2048: { kind: "rsa", modulusBits: 2048 },
  RSA_3072: { kind: "rsa", modulusBits: 3072 },
  RSA_4096: { kind: "rsa", modulusBits: 4096 },
  ECC_NIST_P256: { kind: "ec", curve: "prime256v1" },
  ECC_NIST_P384: { kind: "ec", curve: "secp384r1" },
  ECC_NIST_P521: { kind: "ec", curve: "secp521r1" },
  ECC_SECG_P256K1: { kind: "ec", curve: "secp256k1" },
  ECC_NIST_EDWARDS25519: { kind: "ed25519" },
};

export interface GeneratedKeyPair {
  /** PKCS#8 DER; the caller wipes it once wrapped. */
  readonly privateKeyDer: Buffer;
  /** SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Buffer;
}

const DER_ENCODING = {
  publicKeyEncoding: { type: "spki", format: "der" },
  privateKeyEncoding: { type: "pkcs8", format: "der" },
} as const;

/** Generates a key pair off the event loop (libuv thread pool). */
export function generateAsymmetricKeyPair(keySpec: string): Promise<GeneratedKeyPair> {
  const spec = asymmetricSpecs[keySpec];
  if (!spec) return Promise.reject(new Error(`not an asymmetric key spec: ${keySpec}`));
  const done =
    (resolve: (pair: GeneratedKeyPair) => void, reject: (err: Error) => void) =>
    (err: Error | null, publicKeyDer: Buffer, privateKeyDer: Buffer) =>
      err ? reject(err) : resolve({ privateKeyDer, publicKeyDer });
  return new Promise((resolve, reject) => {
    switch (spec.kind) {
      case "rsa":
        generateKeyPair(
          "rsa",
          { modulusLength: spec.modulusBits!, publicExponent: 0x10001, ...DER_ENCODING },
          done(resolve, reject),
        );
        break;
      case "ec":
        generateKeyPair("ec", { namedCurve: spec.curve!, ...DER_ENCODING }, done(resolve, reject));
        break;
      case "ed25519":
        generateKeyPair("ed25519", DER_ENCODING, done(resolve, reject));
        break;
    }
  });
}

export interface ParsedKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, what GetPublicKey returns. */
  readonly publicKeyDer: Buffer;
}

/** Parses PKCS#8 DER once; callers cache the result (parsing costs ~20 signatures). */
export function parsePrivateKey(pkcs8Der: Buffer): ParsedKeyPair {
  const privateKey = createPrivateKey({ key: pkcs8Der, format: "der", type: "pkcs8" });
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyDer: publicKey.export({ type: "spki", format: "der" }),
  };
}

// ---------------------------------------------------------------------------
// RSAES-OAEP (Encrypt/Decrypt with RSA ENCRYPT_DECRYPT keys). The ciphertext is
// the raw OAEP output, modulus-sized, with no header — exactly what AWS returns.

export const OAEP_HASH: Readonly<Record<string, string>> = {
  RSAES_OAEP_SHA_1: "sha1",
  RSAES_OAEP_SHA_256: "sha256",
};

const HASH_BYTES: Readonly<Record<string, number>> = { sha1: 20, sha256: 32 };

/** Largest plaintext RSAES-OAEP takes: k - 2·hLen - 2 (RSA_2048: 214 for SHA-1, 190 for SHA-256). */
export function oaepMaxPlaintext(keySpec: string, algorithm: string): number {
  const bits = asymmetricSpecs[keySpec]?.modulusBits;
  const hash = OAEP_HASH[algorithm];
  if (bits === undefined || hash === undefined) return 0;
  return bits / 8 - 2 * HASH_BYTES[hash]! - 2;
}

export function oaepEncrypt(
  publicKey: KeyObject,
  algorithm: string,
  plaintext: Uint8Array,
): Buffer {
  return publicEncrypt(
    { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm]! },
    plaintext,
  );
}

/** The node:crypto call of an OAEP decryption (a worker can make it: see privateKeyWorkers.ts). */
export const oaepDecryptCall = (
  privateKey: KeyObject,
  algorithm: string,
  ciphertext: Uint8Array,
): PrivateKeyCall => ({
  op: "privateDecrypt",
  key: privateKey,
  padding: constants.RSA_PKCS1_OAEP_PADDING,
  oaepHash: OAEP_HASH[algorithm]!,
  data: ciphertext,
});

/** Returns undefined when the ciphertext does not decrypt (wrong key, algorithm or bytes). */
export function oaepDecrypt(
  privateKey: KeyObject,
  algorithm: string,
  ciphertext: Uint8Array,
): Buffer | undefined {
  return runPrivateKeyCall(
    { sign, privateEncrypt, privateDecrypt },
    oaepDecryptCall(privateKey, algorithm, ciphertext),
  );
}

// ---------------------------------------------------------------------------
// ECDH (DeriveSharedSecret): the raw shared secret, i.e. the x coordinate of d·Q.

/**
 * Parses a peer's SubjectPublicKeyInfo and checks it is on the same curve as our
 * key; returns undefined if it is not a usable public key (OpenSSL checks that the
 * point is on the curve while decoding it).
 */
export function parsePeerPublicKey(spkiDer: Uint8Array, ours: KeyObject): KeyObject | undefined {
  let peer: KeyObject;
  try {
    peer = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch {
    return undefined;
  }
  if (peer.asymmetricKeyType !== "ec") return undefined;
  if (peer.asymmetricKeyDetails?.namedCurve !== ours.asymmetricKeyDetails?.namedCurve)
    return undefined;
  return peer;
}

export function ecdhSharedSecret(privateKey: KeyObject, peer: KeyObject): Buffer {
  return diffieHellman({ privateKey, publicKey: peer });
}
