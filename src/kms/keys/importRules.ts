/** Shared rules of the import operations. */
import { importableKeySpec } from "../crypto/importWrapping.js";
import { kmsError } from "../errors.js";
import type { KeyRecord } from "./keyRecord.js";

/** Symmetric, HMAC, RSA and ECC keys take imported material; nothing else exists here. */
export function importableSpec(key: KeyRecord): void {
  if (!importableKeySpec(key.keySpec))
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} has key spec ${key.keySpec}, whose material Keyhaven cannot import.`,
    );
}
