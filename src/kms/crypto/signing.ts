/**
 * AWS KMS signing algorithms on node:crypto. MessageType RAW hashes the message as
 * part of signing (node's sign/verify); DIGEST signs the caller's digest as it is
 * (prehashed.ts). Signatures are in the formats AWS returns: RSA signatures are
 * modulus-sized, ECDSA signatures are DER ECDSA-Sig-Value, Ed25519 signatures are
 * the 64-byte R ‖ S of RFC 8032.
 */
import * as nodeCrypto from "node:crypto";
import { constants, verify, type KeyObject } from "node:crypto";
import {
  ecdsaSignDigest,
  ecdsaVerifyDigest,
  HASH_LENGTH,
  rsaPkcs1DigestInfo,
  rsaPkcs1VerifyDigest,
  rsaPssEncodedDigest,
  rsaPssVerifyDigest,
  type HashName,
} from "./prehashed.js";
import { runPrivateKeyCall, type PrivateKeyCall } from "./privateKeyWorkers.js";

export type SigningScheme = "rsa-pss" | "rsa-pkcs1" | "ecdsa" | "ed25519" | "ed25519ph";

export interface SigningAlgorithmInfo {
  readonly scheme: SigningScheme;
  readonly hash: HashName;
  /** The only MessageType the algorithm takes, where AWS restricts it. */
  readonly messageType?: "RAW" | "DIGEST";
}

export const signingAlgorithms: Readonly<Record<string, SigningAlgorithmInfo>> = {
  RSASSA_PSS_SHA_256: { scheme: "rsa-pss", hash: "sha256" },
  RSASSA_PSS_SHA_384: { scheme: "rsa-pss", hash: "sha384" },
  RSASSA_PSS_SHA_512: { scheme: "rsa-pss", hash: "sha512" },
  RSASSA_PKCS1_V1_5_SHA_256: { scheme: "rsa-pkcs1", hash: "sha256" },
  RSASSA_PKCS1_V1_5_SHA_384: { scheme: "rsa-pkcs1", hash: "sha384" },
  RSASSA_PKCS1_V1_5_SHA_512: { scheme: "rsa-pkcs1", hash: "sha512" },
  ECDSA_SHA_256: { scheme: "ecdsa", hash: "sha256" },
  ECDSA_SHA_384: { scheme: "ecdsa", hash: "sha384" },
  ECDSA_SHA_512: { scheme: "ecdsa", hash: "sha512" },
  ED25519_SHA_512: { scheme: "ed25519", hash: "sha512", messageType: "RAW" },
  ED25519_PH_SHA_512: { scheme: "ed25519ph", hash: "sha512", messageType: "DIGEST" },
};

/** Length a DIGEST message must have for the algorithm. */
export const digestLength = (info: SigningAlgorithmInfo): number => HASH_LENGTH[info.hash];

/**
 * Ed25519ph (RFC 8032 HashEdDSA) needs OpenSSL 3.2's EdDSA "instance" parameter;
 * Node 20 ships OpenSSL 3.0, whose Ed25519 is PureEdDSA only.
 */
export const ED25519PH_SUPPORTED = false;

const pss = (key: KeyObject) => ({
  key,
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
});

export class UnsupportedSigningError extends Error {
  override name = "UnsupportedSigningError";
}

/**
 * The node:crypto call that makes a signature (a worker can make it: see
 * privateKeyWorkers.ts), or undefined for ECDSA over a given digest, which
 * @noble/curves signs in JavaScript (`signMessage`).
 */
export function signingCall(
  info: SigningAlgorithmInfo,
  privateKey: KeyObject,
  message: Buffer,
  isDigest: boolean,
): PrivateKeyCall | undefined {
  const key = privateKey;
  switch (info.scheme) {
    case "rsa-pss":
      return isDigest
        ? {
            op: "privateEncrypt",
            key,
            padding: constants.RSA_NO_PADDING,
            data: rsaPssEncodedDigest(key, info.hash, message),
          }
        : { op: "sign", algorithm: info.hash, ...pss(key), data: message };
    case "rsa-pkcs1":
      return isDigest
        ? {
            op: "privateEncrypt",
            key,
            padding: constants.RSA_PKCS1_PADDING,
            data: rsaPkcs1DigestInfo(info.hash, message),
          }
        : { op: "sign", algorithm: info.hash, key, data: message };
    case "ecdsa":
      return isDigest ? undefined : { op: "sign", algorithm: info.hash, key, data: message };
    case "ed25519":
      return { op: "sign", algorithm: null, key, data: message };
    case "ed25519ph":
      throw new UnsupportedSigningError("Ed25519ph is not available in this OpenSSL");
  }
}

export function signMessage(
  info: SigningAlgorithmInfo,
  privateKey: KeyObject,
  message: Buffer,
  isDigest: boolean,
): Buffer {
  const call = signingCall(info, privateKey, message, isDigest);
  return call ? runPrivateKeyCall(nodeCrypto, call)! : ecdsaSignDigest(privateKey, message);
}

/**
 * True only for a valid signature; malformed signatures are simply invalid. Only the
 * public key is used: attacker-chosen signatures never meet the private key.
 */
export function verifyMessage(
  info: SigningAlgorithmInfo,
  { publicKey }: { readonly publicKey: KeyObject },
  message: Buffer,
  isDigest: boolean,
  signature: Buffer,
): boolean {
  try {
    switch (info.scheme) {
      case "rsa-pss":
        return isDigest
          ? rsaPssVerifyDigest(publicKey, info.hash, message, signature)
          : verify(info.hash, message, pss(publicKey), signature);
      case "rsa-pkcs1":
        return isDigest
          ? rsaPkcs1VerifyDigest(publicKey, info.hash, message, signature)
          : verify(info.hash, message, publicKey, signature);
      case "ecdsa":
        return isDigest
          ? ecdsaVerifyDigest(publicKey, message, signature)
          : verify(info.hash, message, publicKey, signature);
      case "ed25519":
        return verify(null, message, publicKey, signature);
      case "ed25519ph":
        throw new UnsupportedSigningError("Ed25519ph is not available in this OpenSSL");
    }
  } catch (err) {
    if (err instanceof UnsupportedSigningError) throw err;
    return false;
  }
}
