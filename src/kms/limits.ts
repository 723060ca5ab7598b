/**
 * AWS KMS's documented size limits that Keyhaven enforces, with AWS's exceptions, in one
 * table (docs/security.md prints the same table). They bound what one request can make the
 * policy evaluator and the audit log do: with them and linear-time wildcards
 * (authz/patterns.ts), any request up to the body limit is decided in milliseconds.
 * The model (protocol/kms-model.json) enforces the length limits it states itself.
 */
import { kmsError } from "./errors.js";

export interface Limit {
  readonly what: string;
  readonly limit: number;
  readonly unit: string;
  readonly exception: string;
  readonly source: string;
}

const KMS_API = "https://docs.aws.amazon.com/kms/latest/APIReference";

export const LIMITS = {
  encryptionContextBytes: {
    what: "Encryption context: UTF-8 bytes of all keys and values together",
    limit: 8192,
    unit: "bytes",
    exception: "ValidationException",
    source: "Keyhaven's own bound: the AWS KMS API reference states no size for EncryptionContext",
  },
  tagsPerKey: {
    what: "Tags on one key",
    limit: 50,
    unit: "tags",
    exception: "TagException",
    source: `${KMS_API}/API_TagResource.html`,
  },
  tagKeyLength: {
    what: "Tag key",
    limit: 128,
    unit: "characters",
    exception: "ValidationException",
    source: `${KMS_API}/API_Tag.html (model)`,
  },
  tagValueLength: {
    what: "Tag value",
    limit: 256,
    unit: "characters",
    exception: "ValidationException",
    source: `${KMS_API}/API_Tag.html (model)`,
  },
  keyPolicyBytes: {
    what: "Key policy document (CreateKey, PutKeyPolicy)",
    limit: 32768,
    unit: "bytes",
    exception: "LimitExceededException",
    source: `${KMS_API}/API_PutKeyPolicy.html ("32 kilobytes (32768 bytes)")`,
  },
  grantConstraintPairs: {
    what: "Pairs in one grant constraint (EncryptionContextEquals or EncryptionContextSubset)",
    limit: 8,
    unit: "pairs",
    exception: "ValidationException",
    source: `${KMS_API}/API_CreateGrant.html`,
  },
  grantConstraintValueLength: {
    what: "Value of a grant constraint pair",
    limit: 384,
    unit: "characters",
    exception: "ValidationException",
    source: `${KMS_API}/API_CreateGrant.html`,
  },
  aliasNameLength: {
    what: "Alias name",
    limit: 256,
    unit: "characters",
    exception: "ValidationException",
    source: `${KMS_API}/API_CreateAlias.html (model)`,
  },
  grantNameLength: {
    what: "Grant name",
    limit: 256,
    unit: "characters",
    exception: "ValidationException",
    source: `${KMS_API}/API_CreateGrant.html (model)`,
  },
  grantTokens: {
    what: "Grant tokens in one request",
    limit: 10,
    unit: "tokens",
    exception: "ValidationException",
    source: `${KMS_API}/API_Encrypt.html (model)`,
  },
} as const satisfies Record<string, Limit>;

/** Throws AWS's ValidationException when an encryption context is larger than the limit. */
export function checkEncryptionContextSize(
  context: Readonly<Record<string, string>>,
  member: string,
): void {
  let bytes = 0;
  for (const key of Object.keys(context))
    bytes += Buffer.byteLength(key) + Buffer.byteLength(context[key]!);
  const { limit } = LIMITS.encryptionContextBytes;
  if (bytes > limit)
    throw kmsError(
      "ValidationException",
      `1 validation error detected: Value at '${member}' failed to satisfy constraint: the keys and values of an encryption context may total at most ${limit} bytes (UTF-8); this one has ${bytes}. Keep the context to short identifiers and store larger data with the ciphertext.`,
    );
}

/** Throws AWS's LimitExceededException when a key policy is larger than 32 KB. */
export function checkKeyPolicySize(policy: string): void {
  const bytes = Buffer.byteLength(policy);
  const { limit } = LIMITS.keyPolicyBytes;
  if (bytes > limit)
    throw kmsError(
      "LimitExceededException",
      `The key policy is ${bytes} bytes; a key policy may be at most ${limit} bytes. Shorten it, for example by granting through caller policies or grants.`,
    );
}
