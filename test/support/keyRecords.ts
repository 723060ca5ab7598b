import type { KeyRecord } from "../../src/kms/keys/keyRecord.js";

/**
 * An enabled SYMMETRIC_DEFAULT key record in us-east-1 of account 000000000000, for tests
 * that write the store directly; `overrides` sets any field (keyId, createdAt, state …).
 */
export function symmetricKeyRecord(
  overrides: Partial<KeyRecord> & Pick<KeyRecord, "keyId">,
): KeyRecord {
  return {
    arn: `arn:aws:kms:us-east-1:000000000000:key/${overrides.keyId}`,
    createdAt: 0,
    description: "",
    keySpec: "SYMMETRIC_DEFAULT",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "AWS_KMS",
    state: "Enabled",
    policy: "{}",
    tags: [],
    currentMaterialVersion: 1,
    ...overrides,
  };
}
