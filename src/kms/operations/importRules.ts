/** Shared rules of the import operations. */
import { kmsError } from "../errors.js";
import { isSymmetric } from "../keys/keySpecs.js";
import type { KeyRecord } from "../store/keyStore.js";

/** Symmetric keys take 256-bit material; other specs cannot be imported yet. */
export const SYMMETRIC_MATERIAL_BYTES = 32;

export function importableSpec(key: KeyRecord): void {
  if (!isSymmetric(key.keySpec))
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} has key spec ${key.keySpec}; Keyhaven imports key material only into SYMMETRIC_DEFAULT keys.`,
    );
}
