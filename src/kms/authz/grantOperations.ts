/**
 * The operations a grant may allow (CreateGrant's Operations). The KmsGrant resource's
 * schema takes its enum from here, so the key service and the CRD cannot disagree.
 */
export const GRANT_OPERATIONS = [
  "Decrypt",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "ReEncryptFrom",
  "ReEncryptTo",
  "Sign",
  "Verify",
  "GetPublicKey",
  "CreateGrant",
  "RetireGrant",
  "DescribeKey",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateMac",
  "VerifyMac",
  "DeriveSharedSecret",
] as const;
export type GrantOperation = (typeof GRANT_OPERATIONS)[number];
