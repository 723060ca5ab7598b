/** The key an encryption uses: resolved, authorized, usable, and able to take the requested algorithm. */
import type { EncryptionAlgorithmSpec } from "@aws-sdk/client-kms";
import { kmsError } from "../../errors.js";
import { assertKeyUsage, assertMaterialCurrent, assertUsable } from "../../keys/keyState.js";
import { keySpecs } from "../../keys/keySpecs.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";

const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";

/** Resolves a key that must be Enabled and able to encrypt, and checks the requested algorithm. */
export async function encryptionKey(
  ctx: RequestContext,
  keyId: string,
  operation: string,
  algorithm: EncryptionAlgorithmSpec | undefined,
  action?: string,
): Promise<KeyRecord> {
  const key = await useKey(ctx, keyId, { aliases: true, ...(action !== undefined && { action }) });
  assertUsable(key);
  assertMaterialCurrent(key, ctx.service.clock.now().getTime());
  assertKeyUsage(key, "ENCRYPT_DECRYPT", operation);
  checkAlgorithm(key, algorithm);
  return key;
}

/** The algorithm (SYMMETRIC_DEFAULT when omitted) must be one the key spec lists; RSA keys take RSAES_OAEP_*. */
export function checkAlgorithm(key: KeyRecord, algorithm: string | undefined): void {
  const requested = algorithm ?? SYMMETRIC_DEFAULT;
  if (!(keySpecs[key.keySpec]?.encryptionAlgorithms ?? []).includes(requested)) {
    throw kmsError(
      "InvalidKeyUsageException",
      `Algorithm ${requested} is incompatible with key spec ${key.keySpec}.`,
    );
  }
}
