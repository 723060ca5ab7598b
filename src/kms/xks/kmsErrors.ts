/**
 * What a KMS caller sees when an XKS proxy fails: the spec's "KMS Considerations" table
 * (error codes section). The exception depends on the KMS operation that called the proxy;
 * the message depends only on the failure, and never repeats the proxy's errorMessage
 * (AWS logs it instead; Keyhaven's client keeps it on the XksProxyError for the log).
 */
import { kmsError, type KmsError, type KmsErrorCode } from "../errors.js";

/** How a call to the proxy failed. */
export type XksFailure =
  /** The proxy answered with one of the spec's errors (or another errorName). */
  | {
      readonly kind: "proxy";
      readonly errorName: string;
      readonly status: number;
      readonly message?: string;
    }
  /** No TCP connection (refused, unresolvable, reset). */
  | { readonly kind: "unreachable"; readonly detail: string }
  /** No TLS session (certificate not trusted, wrong name, handshake failure). */
  | { readonly kind: "tls"; readonly detail: string }
  /** No answer within the client's timeout. */
  | { readonly kind: "timeout"; readonly detail: string }
  /** An answer that is not the spec's (not JSON, missing members, a non-JSON error). */
  | { readonly kind: "malformed"; readonly detail: string }
  /** A well-formed answer that fails its own checks (CDIV, lengths). */
  | { readonly kind: "invalid-output"; readonly detail: string };

export class XksProxyError extends Error {
  override name = "XksProxyError";
  constructor(readonly failure: XksFailure) {
    super(
      failure.kind === "proxy"
        ? `XKS proxy answered ${failure.status} ${failure.errorName}${failure.message ? `: ${failure.message}` : ""}`
        : `XKS proxy ${failure.kind}: ${failure.detail}`,
    );
  }
}

/** Which KMS operation called the proxy: the exception differs, the message does not. */
export type XksCaller = "CustomKeyStore" | "CreateKey" | "Cryptographic";

const CANNOT_INTERPRET =
  "Keyhaven cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.";
const UNREACHABLE =
  "Keyhaven cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external key store.";

interface Row {
  readonly message: string;
  /** Overrides of the defaults: CustomKeyStore → XksProxyInvalidResponseException, CreateKey → CustomKeyStoreInvalidStateException. */
  readonly customKeyStore?: KmsErrorCode;
  readonly createKey?: KmsErrorCode;
}

const proxyErrors: ReadonlyMap<string, Row> = new Map<string, Row>([
  ["ValidationException", { message: CANNOT_INTERPRET }],
  [
    "InvalidStateException",
    {
      message:
        "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.",
      createKey: "XksKeyInvalidConfigurationException",
    },
  ],
  [
    "InvalidCiphertextException",
    {
      message:
        "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.",
    },
  ],
  [
    "InvalidKeyUsageException",
    {
      message:
        "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again.",
      createKey: "XksKeyInvalidConfigurationException",
    },
  ],
  [
    "AuthenticationFailedException",
    {
      message:
        "The external key store proxy rejected the request because it could not authenticate Keyhaven. Verify the XKS proxy authentication credentials for your external key store and update if necessary.",
      customKeyStore: "XksProxyIncorrectAuthenticationCredentialException",
    },
  ],
  [
    "AccessDeniedException",
    {
      message:
        "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.",
      createKey: "KMSInvalidStateException",
    },
  ],
  [
    "KeyNotFoundException",
    {
      message:
        "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.",
      createKey: "XksKeyNotFoundException",
    },
  ],
  [
    "InvalidUriPathException",
    {
      message:
        "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.",
      customKeyStore: "XksProxyInvalidConfigurationException",
    },
  ],
  [
    "UnsupportedOperationException",
    {
      message:
        "The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator.",
      // The spec names "XksKeyInvalidResponseException", which KMS's model does not have.
      createKey: "XksKeyInvalidConfigurationException",
    },
  ],
  [
    "DependencyTimeoutException",
    {
      message:
        "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
      customKeyStore: "XksProxyUriUnreachableException",
    },
  ],
  [
    "ThrottlingException",
    {
      message:
        "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.",
      customKeyStore: "XksProxyUriUnreachableException",
    },
  ],
  [
    "InternalException",
    {
      message:
        "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.",
    },
  ],
]);

const otherFailures: Readonly<Record<Exclude<XksFailure["kind"], "proxy">, Row>> = {
  unreachable: { message: UNREACHABLE, customKeyStore: "XksProxyUriUnreachableException" },
  tls: {
    message:
      "Keyhaven cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.",
    customKeyStore: "XksProxyUriUnreachableException",
  },
  timeout: {
    message:
      "Keyhaven rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
    customKeyStore: "XksProxyUriUnreachableException",
  },
  malformed: { message: CANNOT_INTERPRET },
  "invalid-output": {
    message:
      "The ciphertext that the external key store proxy submitted for decryption, or the encryption context, is corrupted, missing, or otherwise invalid.",
  },
};

/** The KMS exception for a failed proxy call made on behalf of `caller`. */
export function kmsErrorFor(error: XksProxyError, caller: XksCaller): KmsError {
  const f = error.failure;
  // An errorName the spec does not list is a response Keyhaven cannot interpret.
  const row =
    f.kind === "proxy"
      ? (proxyErrors.get(f.errorName) ?? otherFailures.malformed)
      : otherFailures[f.kind];
  const code: KmsErrorCode =
    caller === "Cryptographic"
      ? "KMSInvalidStateException"
      : caller === "CreateKey"
        ? (row.createKey ?? "CustomKeyStoreInvalidStateException")
        : (row.customKeyStore ?? "XksProxyInvalidResponseException");
  return kmsError(code, row.message);
}
