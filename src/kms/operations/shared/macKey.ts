/** Shared checks of GenerateMac and VerifyMac. */
import type { KeyObject } from "node:crypto";
import { hmacSpecs, type HmacSpec } from "../../crypto/hmac.js";
import { kmsError } from "../../errors.js";
import { assertKeyUsage, assertUsable } from "../../keys/keyState.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";

export interface MacKey {
  readonly key: KeyRecord;
  readonly spec: HmacSpec;
}

export async function macKey(
  ctx: RequestContext,
  keyId: string,
  algorithm: string,
  operation: "GenerateMac" | "VerifyMac",
): Promise<MacKey> {
  const key = await useKey(ctx, keyId, { aliases: true });
  assertUsable(key);
  assertKeyUsage(key, "GENERATE_VERIFY_MAC", operation);
  const spec = hmacSpecs[key.keySpec];
  if (!spec || spec.algorithm !== algorithm)
    throw kmsError(
      "InvalidKeyUsageException",
      `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`,
    );
  return { key, spec };
}

/** HMAC material is a raw secret, served from the same cache as symmetric material. */
export const hmacKeyObject = (ctx: RequestContext, key: KeyRecord): Promise<KeyObject> =>
  ctx.service.symmetricKey(key, key.currentMaterialVersion);
