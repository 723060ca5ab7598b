/**
 * New key material for CreateKey, per key spec (formats in asymmetric.ts):
 * SYMMETRIC_DEFAULT → 32 random bytes; HMAC_* → random bytes of the hash length;
 * RSA_* / ECC_* → a PKCS#8 DER private key, generated off the event loop.
 */
import { asymmetricSpecs, generateAsymmetricKeyPair } from "./asymmetric.js";
import { hmacSpecs } from "./hmac.js";
import type { RandomSource } from "./random.js";

export async function generateKeyMaterial(keySpec: string, random: RandomSource): Promise<Buffer> {
  const hmac = hmacSpecs[keySpec];
  if (hmac) return random(hmac.keyBytes);
  if (asymmetricSpecs[keySpec]) return (await generateAsymmetricKeyPair(keySpec)).privateKeyDer;
  return random(32);
}
