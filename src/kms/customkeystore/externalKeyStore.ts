/**
 * EXTERNAL_KEY_STORE custom key stores: keys whose second layer is computed by an XKS proxy
 * (xks/client.ts) under a key of an external key manager (docs/external-key-stores.md,
 * "Keyhaven as the client"). The mapping from AWS's API:
 *
 *   XksProxyUriEndpoint     https://host (Keyhaven also takes https://host:port)
 *   XksProxyUriPath         [/prefix]/kms/xks/v1
 *   XksProxyConnectivity    PUBLIC_ENDPOINT only; VPC_ENDPOINT_SERVICE has no VPC here
 *   XksProxyAuthenticationCredential
 *                           AccessKeyId stored and described; RawSecretAccessKey wrapped
 *                           under the root key, never logged or returned
 *
 * CreateCustomKeyStore and ConnectCustomKeyStore call the proxy's GetHealthStatus; CreateKey
 * checks the XksKeyId with GetKeyMetadata (AES_256, ENCRYPT and DECRYPT, ENABLED). A key
 * keeps material of its own (double encryption, crypto/externalKeyCiphertext.ts); the proxy
 * encrypts and decrypts the outer layer with the caller's principal, the operation and the
 * key ARN as request metadata. A proxy that fails while the store is CONNECTED leaves it
 * CONNECTED (as AWS); the calls fail with the exceptions of xks/kmsErrors.ts.
 */
import { randomUUID } from "node:crypto";
import type {
  ConnectionErrorCodeType,
  CreateCustomKeyStoreRequest,
  UpdateCustomKeyStoreRequest,
} from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import { kmsError, validationError } from "../errors.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { XksClient } from "../xks/client.js";
import { kmsErrorFor, XksProxyError, type XksCaller } from "../xks/kmsErrors.js";
import type { XksRequestMetadata } from "../xks/wire.js";
import type { CustomKeyStoreRecord } from "./customKeyStoreRecord.js";
import {
  ConnectFailed,
  type KeyStoreConnection,
  type KeyStoreRequest,
  type KeyStoreType,
} from "./customKeyStores.js";

export interface ExternalKeyStoreOptions {
  /** The Region requests to the proxy are signed for. */
  readonly region: string;
  /** Per proxy call (serve --xks-client-timeout). */
  readonly timeoutMs: number;
  /** CA certificates (PEM) to trust for proxies besides Node's public ones (serve --xks-client-ca). */
  readonly ca?: string;
  readonly logger?: Logger;
}

/** botocore's patterns; the endpoint may also carry a port (a proxy on a non-default port). */
const URI_ENDPOINT = /^https:\/\/[a-zA-Z0-9.-]+(:\d{1,5})?$/;
const URI_PATH = /^(\/[a-zA-Z0-9/_-]+)?\/kms\/xks\/v\d{1,2}$/;
const ACCESS_KEY_ID = /^[A-Z2-7]{20,30}$/;
const RAW_SECRET = /^[a-zA-Z0-9/+=]{43,64}$/;
const XKS_KEY_ID = /^[a-zA-Z0-9._-]{1,128}$/;

const CLOUDHSM_MEMBERS = [
  "CloudHsmClusterId",
  "TrustAnchorCertificate",
  "KeyStorePassword",
] as const;

type XksInput = Pick<
  CreateCustomKeyStoreRequest,
  | "XksProxyUriEndpoint"
  | "XksProxyUriPath"
  | "XksProxyConnectivity"
  | "XksProxyAuthenticationCredential"
  | "XksProxyVpcEndpointServiceName"
  | "XksProxyVpcEndpointServiceOwner"
  | "CloudHsmClusterId"
  | "TrustAnchorCertificate"
  | "KeyStorePassword"
>;

/** The members' problems (botocore's lengths and patterns), for one ValidationException. */
function problems(input: XksInput): string[] {
  const out: string[] = [];
  const check = (value: string | undefined, pattern: RegExp, name: string, rule: string) => {
    if (value !== undefined && !pattern.test(value)) out.push(`${name} must be ${rule}`);
  };
  check(
    input.XksProxyUriEndpoint,
    URI_ENDPOINT,
    "XksProxyUriEndpoint",
    "https://host (10-128 characters)",
  );
  if (input.XksProxyUriEndpoint !== undefined && input.XksProxyUriEndpoint.length > 128)
    out.push("XksProxyUriEndpoint must have at most 128 characters");
  check(
    input.XksProxyUriPath,
    URI_PATH,
    "XksProxyUriPath",
    "[/prefix]/kms/xks/v1 of a-z, A-Z, 0-9, /, _ and -",
  );
  if (input.XksProxyUriPath !== undefined && input.XksProxyUriPath.length > 128)
    out.push("XksProxyUriPath must have at most 128 characters");
  const credential = input.XksProxyAuthenticationCredential;
  if (credential) {
    // Never echo the values: they are the credential.
    check(
      credential.AccessKeyId ?? "",
      ACCESS_KEY_ID,
      "XksProxyAuthenticationCredential.AccessKeyId",
      "20-30 characters of A-Z and 2-7",
    );
    check(
      credential.RawSecretAccessKey ?? "",
      RAW_SECRET,
      "XksProxyAuthenticationCredential.RawSecretAccessKey",
      "43-64 characters of a-z, A-Z, 0-9, /, + and =",
    );
  }
  const hsm = CLOUDHSM_MEMBERS.filter((m) => input[m] !== undefined);
  if (hsm.length > 0) out.push(`${hsm.join(", ")} apply only to AWS_CLOUDHSM custom key stores`);
  return out;
}

/** VPC_ENDPOINT_SERVICE: there is no Amazon VPC endpoint service for Keyhaven to find. */
function checkConnectivity(input: XksInput): void {
  const vpc =
    input.XksProxyConnectivity === "VPC_ENDPOINT_SERVICE" ||
    input.XksProxyVpcEndpointServiceName !== undefined ||
    input.XksProxyVpcEndpointServiceOwner !== undefined;
  if (vpc)
    throw kmsError(
      "XksProxyVpcEndpointServiceNotFoundException",
      "Keyhaven reaches external key store proxies only over a public endpoint: use XksProxyConnectivity PUBLIC_ENDPOINT without XksProxyVpcEndpointServiceName.",
    );
  if (input.XksProxyConnectivity !== undefined && input.XksProxyConnectivity !== "PUBLIC_ENDPOINT")
    throw validationError([
      "XksProxyConnectivity must satisfy enum value set: [PUBLIC_ENDPOINT, VPC_ENDPOINT_SERVICE]",
    ]);
}

function checkUriFree(
  endpoint: string,
  path: string,
  others: readonly CustomKeyStoreRecord[],
): void {
  if (
    others.some(
      (r) =>
        r.settings["xksProxyUriEndpoint"] === endpoint && r.settings["xksProxyUriPath"] === path,
    )
  )
    throw kmsError(
      "XksProxyUriInUseException",
      `Another external key store uses ${endpoint}${path}; each needs its own proxy URI.`,
    );
}

/** AWS's ConnectionErrorCode for a GetHealthStatus that failed. */
function connectionErrorCode(error: XksProxyError): ConnectionErrorCodeType {
  const f = error.failure;
  switch (f.kind) {
    case "unreachable":
      return "XKS_PROXY_NOT_REACHABLE";
    case "timeout":
      return "XKS_PROXY_TIMED_OUT";
    case "tls":
      return "XKS_PROXY_INVALID_TLS_CONFIGURATION";
    case "proxy":
      if (
        f.errorName === "AuthenticationFailedException" ||
        f.errorName === "AccessDeniedException"
      )
        return "XKS_PROXY_ACCESS_DENIED";
      if (f.errorName === "InvalidUriPathException") return "XKS_PROXY_INVALID_CONFIGURATION";
      if (f.errorName === "DependencyTimeoutException") return "XKS_PROXY_TIMED_OUT";
      return "XKS_PROXY_INVALID_RESPONSE";
    default:
      return "XKS_PROXY_INVALID_RESPONSE";
  }
}

type ProxyCall = <T>(caller: XksCaller, storeId: string, fn: () => Promise<T>) => Promise<T>;

/** Runs a proxy call; its failure becomes the exception `caller` answers (logged with the proxy's detail). */
const proxyCall =
  (logger: Logger | undefined): ProxyCall =>
  async (caller, storeId, fn) => {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof XksProxyError)) throw err;
      logger?.warn(
        { customKeyStoreId: storeId, failure: err.failure.kind, reason: err.message },
        "external key store proxy call failed",
      );
      throw kmsErrorFor(err, caller);
    }
  };

const metadataOf = (request: KeyStoreRequest, kmsKeyArn?: string): XksRequestMetadata => ({
  awsPrincipalArn: request.principal,
  kmsOperation: request.operation,
  kmsRequestId: request.requestId,
  ...(kmsKeyArn !== undefined && { kmsKeyArn }),
});

export function externalKeyStoreType(options: ExternalKeyStoreOptions): KeyStoreType {
  const { logger } = options;

  const client = (settings: Readonly<Record<string, string>>, secret: string) =>
    new XksClient({
      endpoint: settings["xksProxyUriEndpoint"] ?? "",
      uriPath: settings["xksProxyUriPath"] ?? "",
      credential: { accessKeyId: settings["xksProxyAccessKeyId"] ?? "", secretAccessKey: secret },
      region: options.region,
      timeoutMs: options.timeoutMs,
      ...(options.ca !== undefined && { ca: options.ca }),
    });

  const call = proxyCall(logger);

  return {
    type: "EXTERNAL_KEY_STORE",

    async create(input: CreateCustomKeyStoreRequest, others) {
      const missing = (
        [
          "XksProxyUriEndpoint",
          "XksProxyUriPath",
          "XksProxyConnectivity",
          "XksProxyAuthenticationCredential",
        ] as const
      )
        .filter((m) => input[m] === undefined)
        .map((m) => `${m} is required for an EXTERNAL_KEY_STORE custom key store`);
      checkConnectivity(input);
      const bad = [...missing, ...problems(input)];
      if (bad.length > 0) throw validationError(bad);
      const settings = {
        xksProxyUriEndpoint: input.XksProxyUriEndpoint!,
        xksProxyUriPath: input.XksProxyUriPath!,
        xksProxyConnectivity: "PUBLIC_ENDPOINT",
        xksProxyAccessKeyId: input.XksProxyAuthenticationCredential!.AccessKeyId!,
      };
      checkUriFree(settings.xksProxyUriEndpoint, settings.xksProxyUriPath, others);
      const secret = input.XksProxyAuthenticationCredential!.RawSecretAccessKey!;
      // As AWS: the proxy must answer GetHealthStatus with this credential before the store exists.
      const xks = client(settings, secret);
      try {
        await call("CustomKeyStore", "(new)", () =>
          xks.getHealthStatus({ kmsOperation: "CreateCustomKeyStore", kmsRequestId: randomUUID() }),
        );
      } finally {
        xks.close();
      }
      return { settings, secret };
    },

    async update(input: UpdateCustomKeyStoreRequest, record, others) {
      checkConnectivity(input);
      const bad = problems(input);
      if (bad.length > 0) throw validationError(bad);
      const credential = input.XksProxyAuthenticationCredential;
      const settings = {
        ...record.settings,
        ...(input.XksProxyUriEndpoint !== undefined && {
          xksProxyUriEndpoint: input.XksProxyUriEndpoint,
        }),
        ...(input.XksProxyUriPath !== undefined && { xksProxyUriPath: input.XksProxyUriPath }),
        ...(credential?.AccessKeyId !== undefined && {
          xksProxyAccessKeyId: credential.AccessKeyId,
        }),
      };
      const uriChanged =
        input.XksProxyUriEndpoint !== undefined || input.XksProxyUriPath !== undefined;
      if (uriChanged)
        checkUriFree(
          settings["xksProxyUriEndpoint"] ?? "",
          settings["xksProxyUriPath"] ?? "",
          others,
        );
      const changes =
        uriChanged || credential !== undefined || input.XksProxyConnectivity !== undefined;
      return {
        ...(changes && { settings }),
        ...(credential?.RawSecretAccessKey !== undefined && {
          secret: credential.RawSecretAccessKey,
        }),
        changes,
      };
    },

    describe: (record) => ({
      XksProxyConfiguration: {
        Connectivity: "PUBLIC_ENDPOINT",
        AccessKeyId: record.settings["xksProxyAccessKeyId"],
        UriEndpoint: record.settings["xksProxyUriEndpoint"],
        UriPath: record.settings["xksProxyUriPath"],
      },
    }),

    keyMetadata: (_record, key: KeyRecord) => ({
      ...(key.xksKeyId !== undefined && { XksKeyConfiguration: { Id: key.xksKeyId } }),
    }),

    async connect(record, secret) {
      if (secret === undefined)
        throw new ConnectFailed(
          "no XKS proxy authentication credential",
          "XKS_PROXY_ACCESS_DENIED",
        );
      const xks = client(record.settings, secret);
      try {
        await xks.getHealthStatus({
          kmsOperation: "ConnectCustomKeyStore",
          kmsRequestId: randomUUID(),
        });
      } catch (err) {
        xks.close();
        if (err instanceof XksProxyError)
          throw new ConnectFailed(err.message, connectionErrorCode(err));
        throw err;
      }
      return proxyConnection(record.id, xks, call);
    },
  };
}

function proxyConnection(storeId: string, xks: XksClient, call: ProxyCall): KeyStoreConnection {
  /** The external key of a key of this store (every such key has one). */
  const externalId = (key: KeyRecord): string => {
    if (key.xksKeyId === undefined)
      throw kmsError("KMSInvalidStateException", `${key.arn} has no XksKeyId.`);
    return key.xksKeyId;
  };
  return {
    async createKey(key, request) {
      const xksKeyId = key.xksKeyId ?? "";
      if (!XKS_KEY_ID.test(xksKeyId))
        throw validationError([
          "XksKeyId must be 1-128 characters of a-z, A-Z, 0-9, '.', '-' and '_'",
        ]);
      const m = await call("CreateKey", storeId, () =>
        xks.getKeyMetadata(xksKeyId, metadataOf(request)),
      );
      const why =
        m.keySpec !== "AES_256"
          ? `its key spec is ${m.keySpec}, not AES_256`
          : !m.keyUsage.includes("ENCRYPT") || !m.keyUsage.includes("DECRYPT")
            ? `its key usage (${m.keyUsage.join(", ")}) does not include both ENCRYPT and DECRYPT`
            : m.keyStatus !== "ENABLED"
              ? `it is ${m.keyStatus}`
              : undefined;
      if (why !== undefined)
        throw kmsError(
          "XksKeyInvalidConfigurationException",
          `The external key ${xksKeyId} cannot back a KMS key: ${why}.`,
        );
    },
    external: {
      encrypt: (key, plaintext, aad, request) =>
        call("Cryptographic", storeId, () =>
          xks.encrypt(externalId(key), plaintext, aad, metadataOf(request, key.arn)),
        ),
      decrypt: (key, sealed, aad, request) =>
        call("Cryptographic", storeId, () =>
          xks.decrypt(externalId(key), sealed, aad, metadataOf(request, key.arn)),
        ),
    },
    // AWS never deletes the external key: it belongs to the external key manager.
    deleteKey: async () => {},
    close: async () => xks.close(),
  };
}
