/**
 * The one registry of errors the key service can return, with AWS's names and
 * HTTP status codes. Statuses of the modelled exceptions come from the Smithy
 * model shipped in @aws-sdk/client-kms (its `httpError` traits); the protocol-level
 * ones (authentication, serialization, validation) are those every AWS JSON
 * service returns. Client errors are never 5xx: SDKs retry 5xx.
 */
export const errorStatus = {
  // Modelled KMS exceptions.
  AlreadyExistsException: 409,
  CloudHsmClusterInUseException: 400,
  CloudHsmClusterInvalidConfigurationException: 400,
  CloudHsmClusterNotActiveException: 400,
  CloudHsmClusterNotFoundException: 400,
  CloudHsmClusterNotRelatedException: 400,
  ConflictException: 409,
  CustomKeyStoreHasCMKsException: 400,
  CustomKeyStoreInvalidStateException: 400,
  CustomKeyStoreNameInUseException: 400,
  CustomKeyStoreNotFoundException: 400,
  DependencyTimeoutException: 503,
  DisabledException: 409,
  DryRunOperationException: 412,
  ExpiredImportTokenException: 400,
  IncorrectKeyException: 400,
  IncorrectKeyMaterialException: 400,
  InvalidAliasNameException: 400,
  InvalidArnException: 400,
  InvalidCiphertextException: 400,
  InvalidGrantIdException: 400,
  InvalidGrantTokenException: 400,
  InvalidImportTokenException: 400,
  InvalidKeyUsageException: 400,
  InvalidMarkerException: 400,
  KeyUnavailableException: 500,
  KMSInternalException: 500,
  KMSInvalidMacException: 400,
  KMSInvalidSignatureException: 400,
  KMSInvalidStateException: 409,
  LimitExceededException: 400,
  MalformedPolicyDocumentException: 400,
  NotFoundException: 404,
  TagException: 400,
  UnsupportedOperationException: 400,
  // External key stores (what a Keyhaven XKS client answers when the proxy fails; kms/xks/).
  XksKeyAlreadyInUseException: 400,
  XksKeyInvalidConfigurationException: 400,
  XksKeyNotFoundException: 400,
  XksProxyIncorrectAuthenticationCredentialException: 400,
  XksProxyInvalidConfigurationException: 400,
  XksProxyInvalidResponseException: 400,
  XksProxyUriInUseException: 400,
  XksProxyUriUnreachableException: 400,
  XksProxyVpcEndpointServiceNotFoundException: 400,
  // Common AWS JSON-protocol errors.
  AccessDeniedException: 400,
  NotAuthorizedException: 400,
  ValidationException: 400,
  SerializationException: 400,
  UnknownOperationException: 400,
  MissingAuthenticationTokenException: 403,
  IncompleteSignatureException: 400,
  InvalidSignatureException: 400,
  UnrecognizedClientException: 400,
  ExpiredTokenException: 400,
  RequestEntityTooLargeException: 413,
} as const satisfies Record<string, number>;

export type KmsErrorCode = keyof typeof errorStatus;

/** An error the client is meant to see: its code, message and status go on the wire as they are. */
export class KmsError extends Error {
  readonly status: number;
  constructor(
    readonly code: KmsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = code;
    this.status = errorStatus[code];
  }
}

export const kmsError = (code: KmsErrorCode, message = ""): KmsError => new KmsError(code, message);

/** AWS's validation-error sentence: "1 validation error detected: <a>; <b>". */
export function validationError(problems: readonly string[]): KmsError {
  const n = problems.length;
  return new KmsError(
    "ValidationException",
    `${n} validation error${n === 1 ? "" : "s"} detected: ${problems.join("; ")}`,
  );
}
