/**
 * The XKS Proxy API's vocabulary (aws/aws-kms-xksproxy-api-spec, v1), shared by Keyhaven's
 * proxy (proxy.ts) and its client (client.ts): the URI layout, the request metadata, the
 * error names with their HTTP status codes, and strict Base64.
 *
 *   POST <prefix>/kms/xks/v1/health
 *   POST <prefix>/kms/xks/v1/keys/<externalKeyId>/metadata | encrypt | decrypt
 *
 * Bodies are JSON (`application/json`), signed with SigV4 for the service `kms-xks-proxy`;
 * errors are `{"errorName": ..., "errorMessage"?: ...}`.
 */

export const XKS_SERVICE = "kms-xks-proxy";
export const XKS_API_PATH = "/kms/xks/v1";
export const XKS_CONTENT_TYPE = "application/json";

/** The spec's error names, each with its HTTP status ("Error codes"). */
export const xksErrorStatus = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
  InternalException: 500,
} as const satisfies Record<string, number>;

export type XksErrorName = keyof typeof xksErrorStatus;

export const isXksErrorName = (name: unknown): name is XksErrorName =>
  typeof name === "string" && Object.hasOwn(xksErrorStatus, name);

/** `requestMetadata` of every request; which members are required depends on the operation. */
export interface XksRequestMetadata {
  readonly awsPrincipalArn?: string;
  readonly awsSourceVpc?: string;
  readonly awsSourceVpce?: string;
  readonly kmsKeyArn?: string;
  readonly kmsOperation: string;
  readonly kmsRequestId: string;
  readonly kmsViaService?: string;
}

export const XKS_METADATA_MEMBERS = [
  "awsPrincipalArn",
  "awsSourceVpc",
  "awsSourceVpce",
  "kmsKeyArn",
  "kmsOperation",
  "kmsRequestId",
  "kmsViaService",
] as const;

/** The four operations, by the last part of their URI. */
export type XksOperation = "GetHealthStatus" | "GetKeyMetadata" | "Encrypt" | "Decrypt";

export const keyOperations: ReadonlyMap<string, XksOperation> = new Map([
  ["metadata", "GetKeyMetadata"],
  ["encrypt", "Encrypt"],
  ["decrypt", "Decrypt"],
]);

/** An external key id: at most 128 of A-Z a-z 0-9 - . _ ("API operations"). */
export const EXTERNAL_KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** An XksProxyUriPath: at most 128 of a-z A-Z 0-9 / - _, ending in /kms/xks/v1. */
export const XKS_URI_PATH = /^(\/[A-Za-z0-9_-]+)*\/kms\/xks\/v1$/;

/** XksProxyAuthenticationCredential sizes (Appendix A). */
export const XKS_ACCESS_KEY_ID = { min: 20, max: 30 } as const;
export const XKS_SECRET = { min: 43, max: 64 } as const;

export function isXksCredential(accessKeyId: string, secretAccessKey: string): boolean {
  return (
    accessKeyId.length >= XKS_ACCESS_KEY_ID.min &&
    accessKeyId.length <= XKS_ACCESS_KEY_ID.max &&
    secretAccessKey.length >= XKS_SECRET.min &&
    secretAccessKey.length <= XKS_SECRET.max
  );
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard, padded Base64 (RFC 4648 §4); undefined for anything else. */
export function strictBase64(value: unknown): Buffer | undefined {
  if (typeof value !== "string" || !BASE64.test(value)) return undefined;
  return Buffer.from(value, "base64");
}

/** An errorMessage as the spec allows it: printable ASCII, under 512 characters. */
export function xksErrorMessage(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, "?").slice(0, 511);
}
