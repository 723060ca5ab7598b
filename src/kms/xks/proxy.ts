/**
 * Keyhaven as an XKS proxy (docs/external-key-stores.md): the four operations of AWS's XKS
 * Proxy API served under `<prefix>/kms/xks/v1` on the key service's listener, so that AWS
 * KMS (or any XKS client) keeps key material in Keyhaven. An external key id is a Keyhaven
 * key id, or the name of an alias without its `alias/` (the id's alphabet has no slash).
 *
 * Per request: route, authenticate (SigV4 for `kms-xks-proxy`, any region, only credentials
 * of the credentials file with XKS sizes), validate, authorize with the key's policy like
 * any KMS caller (GetKeyMetadata as kms:DescribeKey, Encrypt as kms:Encrypt, Decrypt as
 * kms:Decrypt; the request metadata as `xks:*` condition keys), act. GetHealthStatus is
 * authenticated but not authorized (the spec excludes it). The server (protocol/server.ts)
 * reads the body, writes the audit line from the answer, and sends it.
 */
import type { KeyObject } from "node:crypto";
import { KmsError } from "../errors.js";
import type { Credential } from "../identity/credentialsFile.js";
import type { KeyService } from "../keyService.js";
import { isKeyId } from "../keys/resolveKey.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { verifySigV4, type SignedRequest } from "../protocol/sigv4.js";
import { callerOf, type Authorizer, type RequestContext } from "../request.js";
import { authorizeKey } from "../access/useKey.js";
import {
  openXks,
  sealXks,
  xksIntegrityValue,
  xksMaterialVersion,
  XKS_MAX_AAD,
  XKS_MAX_METADATA,
} from "../crypto/xksCiphertext.js";
import {
  EXTERNAL_KEY_ID,
  isXksCredential,
  keyOperations,
  strictBase64,
  XKS_API_PATH,
  XKS_METADATA_MEMBERS,
  XKS_SERVICE,
  xksErrorMessage,
  xksErrorStatus,
  type XksErrorName,
  type XksOperation,
} from "./wire.js";

export interface XksProxyOptions {
  /** The optional path prefix before /kms/xks/v1 ("/tenant-a"; "" for none). */
  readonly prefix: string;
  readonly service: KeyService;
  readonly authorizer: Authorizer;
  /** The static credentials of the credentials file (never web-identity sessions). */
  readonly credentials: (accessKeyId: string) => Credential | undefined;
  /** Deep health check of what holds the keys (the root key wraps and unwraps a probe). */
  readonly healthy: () => Promise<boolean>;
  /** xksProxyModel and ekmFleetDetails[].model name this version. */
  readonly version: string;
}

export interface XksRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: SignedRequest["headers"];
  /** Undefined when it was over the server's body limit. */
  readonly body: Buffer | undefined;
  readonly requestId: string;
  readonly sourceIp: string;
  readonly secureTransport: boolean;
}

/** What the server sends and audits. */
export interface XksAnswer {
  readonly status: number;
  readonly body: object;
  readonly headers?: Readonly<Record<string, string>>;
  readonly eventName: XksOperation | "Unknown";
  readonly caller?: Credential;
  /** Never plaintext, ciphertext or AAD: the key id, the request metadata, the algorithms. */
  readonly requestParameters?: Record<string, unknown>;
  readonly resources: readonly string[];
  readonly errorCode?: XksErrorName;
  readonly errorMessage?: string;
}

class XksError extends Error {
  constructor(
    readonly errorName: XksErrorName,
    message: string,
  ) {
    super(message);
  }
}

const fail = (name: XksErrorName, message: string) => new XksError(name, message);

/** AWS KMS's plaintext limit is 4 KiB and the spec asks for 4300 bytes; more is "not supported". */
const MAX_DATA = 64 * 1024;

/** Key-service errors an XKS caller may meet, in the spec's names. */
const fromKmsError: Readonly<Record<string, XksErrorName>> = {
  AccessDeniedException: "AccessDeniedException",
  NotFoundException: "KeyNotFoundException",
  DisabledException: "InvalidStateException",
  KMSInvalidStateException: "InvalidStateException",
  InvalidCiphertextException: "InvalidCiphertextException",
  InvalidKeyUsageException: "InvalidKeyUsageException",
};

type Json = Readonly<Record<string, unknown>>;

export class XksProxy {
  readonly #o: XksProxyOptions;
  readonly #base: string;

  constructor(options: XksProxyOptions) {
    this.#o = options;
    this.#base = `${options.prefix}${XKS_API_PATH}`;
  }

  /** The XksProxyUriPath to give AWS KMS. */
  get uriPath(): string {
    return this.#base;
  }

  /**
   * Whether a request path is the proxy's: its own, or any other XKS path, which is answered
   * with InvalidUriPathException (what AWS KMS reports as a wrong XksProxyUriPath).
   */
  claims(path: string): boolean {
    return path.startsWith(`${this.#base}/`) || path.includes(`${XKS_API_PATH}/`);
  }

  async handle(request: XksRequest): Promise<XksAnswer> {
    const path = request.url.split("?")[0] ?? "";
    const route = this.#route(path);
    const state: { caller?: Credential; params?: Record<string, unknown>; resources: string[] } = {
      resources: [],
    };
    const eventName = route?.operation ?? "Unknown";
    try {
      if (route && request.method !== "POST") {
        return {
          status: 405,
          body: { errorMessage: "XKS Proxy API requests are POST requests." },
          headers: { allow: "POST" },
          eventName,
          resources: [],
        };
      }
      if (request.body === undefined)
        throw fail("UnsupportedOperationException", "The request body is too large.");
      state.caller = this.#authenticate(request, request.body);
      if (!route || query(request.url))
        throw fail(
          "InvalidUriPathException",
          `No XKS Proxy API operation at ${path.slice(0, 256)}; this proxy's XksProxyUriPath is ${this.#base}.`,
        );
      const body = parseBody(request.body, route.operation);
      const metadata = requestMetadata(body, route.operation);
      state.params = {
        requestMetadata: metadata,
        ...(route.keyId !== undefined && { keyId: route.keyId }),
        ...pick(body, ["encryptionAlgorithm", "ciphertextDataIntegrityValueAlgorithm"]),
      };
      const reply =
        route.operation === "GetHealthStatus"
          ? await this.#health()
          : await this.#keyOperation(
              route.operation,
              route.keyId!,
              body,
              this.#context(request, state.caller, route.operation, metadata, state.resources),
            );
      return {
        status: 200,
        body: reply,
        eventName,
        caller: state.caller,
        requestParameters: state.params,
        resources: state.resources,
      };
    } catch (err) {
      const error = asXksError(err);
      const message = xksErrorMessage(error.message);
      return {
        status: xksErrorStatus[error.errorName],
        body: { errorName: error.errorName, errorMessage: message },
        eventName,
        ...(state.caller && { caller: state.caller }),
        ...(state.params && { requestParameters: state.params }),
        resources: state.resources,
        errorCode: error.errorName,
        errorMessage: message,
      };
    }
  }

  #route(path: string): { operation: XksOperation; keyId?: string } | undefined {
    if (!path.startsWith(`${this.#base}/`)) return undefined;
    const rest = path.slice(this.#base.length + 1);
    if (rest === "health") return { operation: "GetHealthStatus" };
    const m = /^keys\/([^/]+)\/([a-z]+)$/.exec(rest);
    const operation = m ? keyOperations.get(m[2]!) : undefined;
    return operation ? { operation, keyId: m![1]! } : undefined;
  }

  #authenticate(request: XksRequest, body: Buffer): Credential {
    try {
      return verifySigV4(
        { method: request.method, url: request.url, headers: request.headers, body },
        {
          service: XKS_SERVICE,
          region: undefined,
          now: this.#o.service.clock.now(),
          // Only credentials that AWS KMS could hold as an XksProxyAuthenticationCredential.
          lookup: (id, token) => {
            const c = token === undefined ? this.#o.credentials(id) : undefined;
            return c && isXksCredential(c.accessKeyId, c.secretAccessKey) ? c : undefined;
          },
        },
      );
    } catch (err) {
      if (err instanceof KmsError) throw fail("AuthenticationFailedException", err.message);
      throw err;
    }
  }

  #context(
    request: XksRequest,
    credential: Credential,
    operation: XksOperation,
    metadata: Json,
    resources: string[],
  ): RequestContext {
    const conditions = new Map<string, string[]>();
    for (const [k, v] of Object.entries(metadata))
      if (typeof v === "string") conditions.set(`xks:${k.toLowerCase()}`, [v]);
    return {
      service: this.#o.service,
      authorizer: this.#o.authorizer,
      caller: callerOf(credential),
      requestId: request.requestId,
      sourceIp: request.sourceIp,
      secureTransport: request.secureTransport,
      operation,
      resources,
      input: {},
      conditions,
    };
  }

  async #health(): Promise<object> {
    const reason = this.#o.service.rootKey.readiness?.();
    const healthy = reason === undefined && (await this.#o.healthy().catch(() => false));
    return {
      xksProxyFleetSize: 1,
      xksProxyVendor: "Keyhaven",
      xksProxyModel: `Keyhaven XKS proxy ${this.#o.version}`,
      ekmVendor: "Keyhaven",
      ekmFleetDetails: [
        {
          id: this.#o.service.rootKey.id,
          model: `Keyhaven key service ${this.#o.version}`,
          healthStatus: healthy ? "ACTIVE" : "UNAVAILABLE",
        },
      ],
    };
  }

  async #keyOperation(
    operation: XksOperation,
    externalKeyId: string,
    body: Json,
    ctx: RequestContext,
  ): Promise<object> {
    const key = await this.#key(externalKeyId);
    const action =
      operation === "GetKeyMetadata"
        ? "kms:DescribeKey"
        : operation === "Encrypt"
          ? "kms:Encrypt"
          : "kms:Decrypt";
    await authorizeKey(ctx, key, action);
    const symmetric = key.keySpec === "SYMMETRIC_DEFAULT" && key.keyUsage === "ENCRYPT_DECRYPT";
    const enabled = this.#usable(key);
    if (operation === "GetKeyMetadata")
      return {
        keySpec: symmetric ? "AES_256" : key.keySpec,
        keyUsage: symmetric ? ["ENCRYPT", "DECRYPT"] : [],
        keyStatus: enabled === true ? "ENABLED" : "DISABLED",
      };
    if (body["encryptionAlgorithm"] !== "AES_GCM")
      throw fail("ValidationException", "encryptionAlgorithm must be AES_GCM.");
    const aad = optionalBase64(body, "additionalAuthenticatedData");
    if (aad && aad.length > XKS_MAX_AAD)
      throw fail(
        "UnsupportedOperationException",
        `additionalAuthenticatedData is limited to ${XKS_MAX_AAD} bytes.`,
      );
    if (!symmetric)
      throw fail(
        "InvalidKeyUsageException",
        `${key.arn} is a ${key.keySpec} key; XKS keys are symmetric encryption keys.`,
      );
    if (enabled !== true) throw fail("InvalidStateException", `${key.arn} ${enabled}.`);
    const service = this.#o.service;
    if (operation === "Encrypt") {
      const cdiv = body["ciphertextDataIntegrityValueAlgorithm"];
      if (cdiv !== undefined && cdiv !== "SHA_256")
        throw fail("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256.");
      const plaintext = requiredBase64(body, "plaintext");
      const version = key.currentMaterialVersion;
      const material = await service.symmetricKey(key, version);
      const sealed = sealXks(material, version, plaintext, aad, service.random);
      let integrity: Buffer | undefined;
      if (cdiv !== undefined) {
        // Appendix C: the value first, then proof that the output decrypts.
        integrity = xksIntegrityValue(aad, sealed);
        if (!openXks(material, sealed, aad)?.equals(plaintext))
          throw fail("InternalException", "The encryption could not be verified; retry.");
      }
      return {
        ciphertext: sealed.ciphertext.toString("base64"),
        ciphertextMetadata: sealed.ciphertextMetadata.toString("base64"),
        initializationVector: sealed.initializationVector.toString("base64"),
        authenticationTag: sealed.authenticationTag.toString("base64"),
        ...(integrity && { ciphertextDataIntegrityValue: integrity.toString("base64") }),
      };
    }
    const ciphertext = requiredBase64(body, "ciphertext");
    const initializationVector = requiredBase64(body, "initializationVector");
    const authenticationTag = requiredBase64(body, "authenticationTag");
    const ciphertextMetadata = optionalBase64(body, "ciphertextMetadata");
    if (ciphertextMetadata && ciphertextMetadata.length > XKS_MAX_METADATA)
      throw fail("ValidationException", `ciphertextMetadata is at most ${XKS_MAX_METADATA} bytes.`);
    const version = xksMaterialVersion(ciphertextMetadata);
    let material: KeyObject | undefined;
    if (version !== undefined && version >= 1 && version <= key.currentMaterialVersion)
      material = await service.symmetricKey(key, version);
    const plaintext =
      material &&
      openXks(
        material,
        { ciphertext, ciphertextMetadata, initializationVector, authenticationTag },
        aad,
      );
    if (!plaintext)
      throw fail(
        "InvalidCiphertextException",
        "The ciphertext, initialization vector, authentication tag, ciphertext metadata or additional authenticated data is corrupted, missing, or otherwise invalid.",
      );
    return { plaintext: plaintext.toString("base64") };
  }

  /** A key id, else `alias/<id>`; KeyNotFoundException for neither. */
  async #key(externalKeyId: string): Promise<KeyRecord> {
    if (!EXTERNAL_KEY_ID.test(externalKeyId))
      throw fail(
        "ValidationException",
        "An external key id is 1 to 128 of A-Z, a-z, 0-9, '-', '.' and '_'.",
      );
    const store = this.#o.service.store;
    const keyId = isKeyId(externalKeyId)
      ? externalKeyId
      : (await store.getAlias(`alias/${externalKeyId}`))?.targetKeyId;
    const key = keyId === undefined ? undefined : await store.getKey(keyId);
    if (!key)
      throw fail(
        "KeyNotFoundException",
        `No key with id ${externalKeyId}, and no alias alias/${externalKeyId}.`,
      );
    return key;
  }

  /** true, or why the key cannot be used now (after its ARN). */
  #usable(key: KeyRecord): true | string {
    if (key.state !== "Enabled") return `is ${key.state}`;
    if (
      key.materialImported === true &&
      key.materialExpiresAt !== undefined &&
      key.materialExpiresAt <= this.#o.service.clock.now().getTime()
    )
      return "is PendingImport";
    return true;
  }
}

function asXksError(err: unknown): XksError {
  if (err instanceof XksError) return err;
  if (err instanceof KmsError) {
    const name = fromKmsError[err.code];
    if (name) return fail(name, err.message);
  }
  return fail("InternalException", "An internal error occurred; see the key service's log.");
}

const query = (url: string) => url.includes("?");

function parseBody(body: Buffer, operation: XksOperation): Json {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    json = undefined;
  }
  if (typeof json === "object" && json !== null && !Array.isArray(json)) return json as Json;
  // The spec lists no ValidationException for GetHealthStatus: it answers whatever was sent.
  if (operation === "GetHealthStatus") return {};
  throw fail("ValidationException", "The request body is not a JSON object.");
}

/** The known members of requestMetadata (others are ignored: the spec may add some). */
function requestMetadata(body: Json, operation: XksOperation): Record<string, string> {
  const raw = body["requestMetadata"];
  const lenient = operation === "GetHealthStatus";
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    if (lenient) return {};
    throw fail("ValidationException", "requestMetadata is required.");
  }
  const required =
    operation === "GetHealthStatus"
      ? []
      : operation === "GetKeyMetadata"
        ? ["awsPrincipalArn", "kmsOperation", "kmsRequestId"]
        : ["awsPrincipalArn", "kmsKeyArn", "kmsOperation", "kmsRequestId"];
  const out: Record<string, string> = {};
  for (const member of XKS_METADATA_MEMBERS) {
    const v = (raw as Json)[member];
    if (v === undefined) {
      if (required.includes(member))
        throw fail("ValidationException", `requestMetadata.${member} is required.`);
      continue;
    }
    if (typeof v !== "string" || v.length > 2048) {
      if (lenient) continue;
      throw fail("ValidationException", `requestMetadata.${member} must be a string.`);
    }
    out[member] = v;
  }
  return out;
}

function pick(body: Json, members: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of members) {
    const v = body[m];
    if (typeof v === "string") out[m] = v.slice(0, 64);
  }
  return out;
}

function optionalBase64(body: Json, member: string): Buffer | undefined {
  if (body[member] === undefined) return undefined;
  const value = strictBase64(body[member]);
  if (!value) throw fail("ValidationException", `${member} must be Base64.`);
  if (value.length > MAX_DATA)
    throw fail("UnsupportedOperationException", `${member} is limited to ${MAX_DATA} bytes.`);
  return value;
}

function requiredBase64(body: Json, member: string): Buffer {
  const value = optionalBase64(body, member);
  if (!value) throw fail("ValidationException", `${member} is required.`);
  return value;
}
