/**
 * HMAC keys (GenerateMac/VerifyMac). The material is the raw key, wrapped under the
 * root key like symmetric material; the key length equals the hash output length
 * (HMAC_224 → 28 bytes … HMAC_512 → 64 bytes).
 */
import { createHmac, timingSafeEqual, type KeyObject } from "node:crypto";

export interface HmacSpec {
  readonly algorithm: string;
  readonly hash: string;
  readonly keyBytes: number;
}

export const hmacSpecs: Readonly<Record<string, HmacSpec>> = {
  HMAC_224: { algorithm: "HMAC_SHA_224", hash: "sha224", keyBytes: 28 },
  HMAC_256: { algorithm: "HMAC_SHA_256", hash: "sha256", keyBytes: 32 },
  HMAC_384: { algorithm: "HMAC_SHA_384", hash: "sha384", keyBytes: 48 },
  HMAC_512: { algorithm: "HMAC_SHA_512", hash: "sha512", keyBytes: 64 },
};

export function computeMac(spec: HmacSpec, key: KeyObject, message: Uint8Array): Buffer {
  return createHmac(spec.hash, key).update(message).digest();
}

/** Constant-time comparison; a MAC of the wrong length is simply not equal. */
export function macMatches(
  spec: HmacSpec,
  key: KeyObject,
  message: Uint8Array,
  mac: Uint8Array,
): boolean {
  const expected = computeMac(spec, key, message);
  return mac.length === expected.length && timingSafeEqual(expected, mac);
}
