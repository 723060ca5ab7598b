/**
 * An XKS Proxy API client written from AWS's published specification
 * (github.com/aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md, v1.0.3), not from
 * Keyhaven's code: it imports nothing of src/. Requests are the spec's JSON bodies, POSTed
 * over HTTPS to `<uriPath>/health` and `<uriPath>/keys/<externalKeyId>/<metadata|encrypt|
 * decrypt>`, signed with @smithy/signature-v4 (the AWS SDK's signer) for the service
 * `kms-xks-proxy`, as Appendix A describes. The `expect*` checkers hold responses to the
 * spec's "Response Payload" sections, its error table and Appendix C's CDIV.
 *
 * `xksCredential()` makes an access key id (26 of A-Z 2-7) and a 44-character secret.
 */
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:https";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "vitest";
import { Sha256 } from "./sha256.js";

/** The spec's "Error codes" table. */
export const SPEC_ERRORS = {
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
} as const;

export interface XksSpecCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** Appendix A: access key id of 20-30 of A-Z and 2-7; secret e.g. `openssl rand 32 | base64`. */
export function xksCredential(): XksSpecCredential {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const id = [...randomBytes(26)].map((b) => alphabet[b & 31]).join("");
  return { accessKeyId: id, secretAccessKey: randomBytes(32).toString("base64") };
}

export interface SpecResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  readonly json: Record<string, unknown> | undefined;
}

export interface SpecCallOptions {
  readonly method?: string;
  /** Sign with these instead (a wrong secret, a revoked key). */
  readonly credential?: XksSpecCredential;
  /** The region AWS KMS calls from (any: the proxy serves every region). */
  readonly region?: string;
  readonly unsigned?: boolean;
  readonly signingDate?: Date;
}

export interface RequestMetadata {
  awsPrincipalArn?: string;
  awsSourceVpc?: string;
  awsSourceVpce?: string;
  kmsKeyArn?: string;
  kmsOperation: string;
  kmsRequestId: string;
  kmsViaService?: string;
}

export class XksSpecClient {
  constructor(
    /** https://host:port */
    readonly endpoint: string,
    /** XksProxyUriPath: [/prefix]/kms/xks/v1 */
    readonly uriPath: string,
    readonly credential: XksSpecCredential,
    readonly ca: Buffer,
  ) {}

  /** POST (or `method`) `<uriPath><suffix>` with `body` (an object is sent as JSON). */
  async call(suffix: string, body: unknown, options: SpecCallOptions = {}): Promise<SpecResponse> {
    return this.raw(`${this.uriPath}${suffix}`, body, options);
  }

  /** Any path on the proxy's host. */
  async raw(path: string, body: unknown, options: SpecCallOptions = {}): Promise<SpecResponse> {
    const url = new URL(this.endpoint);
    const payload = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const method = options.method ?? "POST";
    let headers: Record<string, string> = {
      host: url.host,
      "content-type": "application/json",
    };
    if (!options.unsigned) {
      const signer = new SignatureV4({
        service: "kms-xks-proxy",
        region: options.region ?? "us-east-2",
        credentials: options.credential ?? this.credential,
        sha256: Sha256,
      });
      const signed = await signer.sign(
        {
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          port: Number(url.port),
          path,
          headers,
          body: payload,
        },
        ...(options.signingDate ? [{ signingDate: options.signingDate }] : []),
      );
      headers = signed.headers;
    }
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: Number(url.port),
          path,
          method,
          headers: { ...headers, "content-length": String(payload.length) },
          ca: this.ca,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: Record<string, unknown> | undefined;
            try {
              json = JSON.parse(text) as Record<string, unknown>;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  health(metadata: RequestMetadata, options?: SpecCallOptions): Promise<SpecResponse> {
    return this.call("/health", { requestMetadata: metadata }, options);
  }

  metadata(
    keyId: string,
    metadata: RequestMetadata,
    options?: SpecCallOptions,
  ): Promise<SpecResponse> {
    return this.call(`/keys/${keyId}/metadata`, { requestMetadata: metadata }, options);
  }

  encrypt(keyId: string, body: EncryptBody, options?: SpecCallOptions): Promise<SpecResponse> {
    return this.call(`/keys/${keyId}/encrypt`, body, options);
  }

  decrypt(keyId: string, body: DecryptBody, options?: SpecCallOptions): Promise<SpecResponse> {
    return this.call(`/keys/${keyId}/decrypt`, body, options);
  }
}

export interface EncryptBody {
  requestMetadata: RequestMetadata;
  additionalAuthenticatedData?: string;
  plaintext: string;
  encryptionAlgorithm: string;
  ciphertextDataIntegrityValueAlgorithm?: string;
}

export interface DecryptBody {
  requestMetadata: RequestMetadata;
  ciphertext: string;
  ciphertextMetadata?: string;
  encryptionAlgorithm: string;
  additionalAuthenticatedData?: string;
  authenticationTag: string;
  initializationVector: string;
}

const b64 = (s: unknown) => Buffer.from(String(s), "base64");
const isBase64 = (s: unknown) =>
  typeof s === "string" &&
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s);

/** Every response is JSON with Content-Type application/json ("API content type"). */
function expectJson(r: SpecResponse): Record<string, unknown> {
  expect(String(r.headers["content-type"])).toMatch(/^application\/json/);
  expect(r.json, r.text).toBeDefined();
  return r.json!;
}

/** GetHealthStatus: 200 and the seven required members. */
export function expectHealthShape(r: SpecResponse): void {
  expect(r.status, r.text).toBe(200);
  const j = expectJson(r);
  expect(Number.isInteger(j["xksProxyFleetSize"]) && (j["xksProxyFleetSize"] as number) > 0).toBe(
    true,
  );
  for (const m of ["xksProxyVendor", "xksProxyModel", "ekmVendor"])
    expect(typeof j[m], m).toBe("string");
  const fleet = j["ekmFleetDetails"] as Record<string, unknown>[];
  expect(Array.isArray(fleet) && fleet.length >= 1 && fleet.length <= 10).toBe(true);
  for (const e of fleet) {
    expect(typeof e["id"]).toBe("string");
    expect(typeof e["model"]).toBe("string");
    expect(["ACTIVE", "DEGRADED", "UNAVAILABLE"]).toContain(e["healthStatus"]);
  }
}

/** GetKeyMetadata: keySpec, keyUsage (at most ten values), keyStatus ENABLED|DISABLED. */
export function expectMetadataShape(r: SpecResponse): Record<string, unknown> {
  expect(r.status, r.text).toBe(200);
  const j = expectJson(r);
  expect(typeof j["keySpec"]).toBe("string");
  expect(Array.isArray(j["keyUsage"]) && (j["keyUsage"] as unknown[]).length <= 10).toBe(true);
  expect(["ENABLED", "DISABLED"]).toContain(j["keyStatus"]);
  return j;
}

/**
 * Encrypt: ciphertext as long as the plaintext, a 12- or 16-byte IV, a 16-byte tag,
 * ciphertextMetadata of at most 20 bytes, and (when asked for) the CDIV of Appendix C.
 */
export function expectEncryptShape(r: SpecResponse, sent: EncryptBody): Record<string, string> {
  expect(r.status, r.text).toBe(200);
  const j = expectJson(r);
  for (const m of ["ciphertext", "initializationVector", "authenticationTag"])
    expect(isBase64(j[m]), m).toBe(true);
  expect(b64(j["ciphertext"]).length).toBe(b64(sent.plaintext).length);
  expect([12, 16]).toContain(b64(j["initializationVector"]).length);
  expect(b64(j["authenticationTag"]).length).toBe(16);
  if (j["ciphertextMetadata"] !== undefined) {
    expect(isBase64(j["ciphertextMetadata"])).toBe(true);
    expect(b64(j["ciphertextMetadata"]).length).toBeLessThanOrEqual(20);
  }
  if (sent.ciphertextDataIntegrityValueAlgorithm !== undefined)
    expect(j["ciphertextDataIntegrityValue"]).toBe(
      specCdiv(sent.additionalAuthenticatedData, j as Record<string, string>),
    );
  return j as Record<string, string>;
}

/** Appendix C: Base64 SHA-256 of aad ‖ ciphertextMetadata ‖ iv ‖ ciphertext ‖ tag. */
export function specCdiv(aad: string | undefined, out: Readonly<Record<string, string>>): string {
  return createHash("sha256")
    .update(b64(aad ?? ""))
    .update(b64(out["ciphertextMetadata"] ?? ""))
    .update(b64(out["initializationVector"]))
    .update(b64(out["ciphertext"]))
    .update(b64(out["authenticationTag"]))
    .digest("base64");
}

/** An error: the table's status, `errorName`, an optional printable-ASCII `errorMessage` < 512. */
export function expectSpecError(r: SpecResponse, name: keyof typeof SPEC_ERRORS): void {
  expect({ status: r.status, errorName: r.json?.["errorName"] }, r.text).toEqual({
    status: SPEC_ERRORS[name],
    errorName: name,
  });
  const message = r.json?.["errorMessage"];
  if (message !== undefined) {
    expect(typeof message).toBe("string");
    expect(message as string).toMatch(/^[\x20-\x7e]{0,511}$/);
  }
}
