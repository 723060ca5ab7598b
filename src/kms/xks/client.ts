/**
 * A client of the XKS Proxy API (wire.ts), for Keyhaven keys in an external key store: the
 * four operations over HTTPS, signed with SigV4 for `kms-xks-proxy`, each bounded by a
 * timeout (AWS KMS allows 250 ms), every answer checked against the spec's shapes before it
 * is used. Failures are XksProxyError (kmsErrors.ts turns them into AWS KMS's exceptions).
 * Encrypt always asks for the CDIV and checks it (Appendix C).
 */
import { Agent, request } from "node:https";
import { XKS_MAX_METADATA, xksIntegrityValue, type XksSealed } from "../crypto/xksCiphertext.js";
import { signSigV4 } from "../protocol/sigv4.js";
import type { SigningCredential } from "../identity/signingCredential.js";
import { XksProxyError, type XksFailure } from "./kmsErrors.js";
import {
  EXTERNAL_KEY_ID,
  strictBase64,
  XKS_CONTENT_TYPE,
  XKS_SERVICE,
  XKS_URI_PATH,
  type XksRequestMetadata,
} from "./wire.js";

export interface XksClientOptions {
  /** XksProxyUriEndpoint: https://host[:port]. */
  readonly endpoint: string;
  /** XksProxyUriPath: [/prefix]/kms/xks/v1. */
  readonly uriPath: string;
  /** XksProxyAuthenticationCredential. */
  readonly credential: Pick<SigningCredential, "accessKeyId" | "secretAccessKey">;
  /** The region requests are signed for (the calling key service's). */
  readonly region: string;
  /** Per request, connection included; 250 ms by default, as AWS KMS. */
  readonly timeoutMs?: number;
  /** CA certificates to trust instead of Node's public ones (a private CA, tests). */
  readonly ca?: string | Buffer;
  readonly now?: () => Date;
}

export interface XksHealth {
  readonly xksProxyFleetSize: number;
  readonly xksProxyVendor: string;
  readonly xksProxyModel: string;
  readonly ekmVendor: string;
  readonly ekmFleetDetails: readonly {
    readonly id: string;
    readonly model: string;
    readonly healthStatus: "ACTIVE" | "DEGRADED" | "UNAVAILABLE";
  }[];
}

export interface XksKeyMetadata {
  readonly keySpec: string;
  readonly keyUsage: readonly string[];
  readonly keyStatus: "ENABLED" | "DISABLED";
}

/** Largest answer read (a decrypt of AWS KMS's largest plaintext is under 6 KiB). */
const MAX_RESPONSE = 256 * 1024;

type Json = Readonly<Record<string, unknown>>;

const malformed = (detail: string) => new XksProxyError({ kind: "malformed", detail });
const invalidOutput = (detail: string) => new XksProxyError({ kind: "invalid-output", detail });

export class XksClient {
  readonly #o: XksClientOptions;
  readonly #url: URL;
  readonly #agent: Agent;

  constructor(options: XksClientOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== "https:" || url.pathname !== "/" || url.search !== "")
      throw new TypeError(`an XksProxyUriEndpoint is https://host[:port], not ${options.endpoint}`);
    if (!XKS_URI_PATH.test(options.uriPath) || options.uriPath.length > 128)
      throw new TypeError(`an XksProxyUriPath is [/prefix]/kms/xks/v1, not ${options.uriPath}`);
    this.#o = options;
    this.#url = url;
    // Kept-alive connections: a TLS handshake per call would eat most of 250 ms.
    this.#agent = new Agent({
      keepAlive: true,
      ...(options.ca !== undefined && { ca: options.ca }),
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  async getHealthStatus(metadata: XksRequestMetadata): Promise<XksHealth> {
    const j = await this.#call("/health", { requestMetadata: metadata });
    const fleet = j["ekmFleetDetails"];
    const size = j["xksProxyFleetSize"];
    if (
      !Number.isInteger(size) ||
      (size as number) < 1 ||
      !["xksProxyVendor", "xksProxyModel", "ekmVendor"].every((m) => typeof j[m] === "string") ||
      !Array.isArray(fleet) ||
      fleet.length < 1 ||
      fleet.length > 10 ||
      !fleet.every(
        (e: Json) =>
          typeof e === "object" &&
          e !== null &&
          typeof e["id"] === "string" &&
          typeof e["model"] === "string" &&
          ["ACTIVE", "DEGRADED", "UNAVAILABLE"].includes(e["healthStatus"] as string),
      )
    )
      throw malformed("GetHealthStatus answer is not the spec's shape");
    return j as unknown as XksHealth;
  }

  async getKeyMetadata(keyId: string, metadata: XksRequestMetadata): Promise<XksKeyMetadata> {
    const j = await this.#call(`/keys/${externalKeyId(keyId)}/metadata`, {
      requestMetadata: metadata,
    });
    const usage = j["keyUsage"];
    if (
      typeof j["keySpec"] !== "string" ||
      !Array.isArray(usage) ||
      usage.length > 10 ||
      !usage.every((u) => typeof u === "string") ||
      (j["keyStatus"] !== "ENABLED" && j["keyStatus"] !== "DISABLED")
    )
      throw malformed("GetKeyMetadata answer is not the spec's shape");
    return { keySpec: j["keySpec"], keyUsage: usage, keyStatus: j["keyStatus"] };
  }

  /** Encrypts under the external key; the CDIV is always requested and checked. */
  async encrypt(
    keyId: string,
    plaintext: Buffer,
    aad: Buffer | undefined,
    metadata: XksRequestMetadata,
  ): Promise<XksSealed> {
    const j = await this.#call(`/keys/${externalKeyId(keyId)}/encrypt`, {
      requestMetadata: metadata,
      ...(aad && { additionalAuthenticatedData: aad.toString("base64") }),
      plaintext: plaintext.toString("base64"),
      encryptionAlgorithm: "AES_GCM",
      ciphertextDataIntegrityValueAlgorithm: "SHA_256",
    });
    const ciphertext = strictBase64(j["ciphertext"]);
    const initializationVector = strictBase64(j["initializationVector"]);
    const authenticationTag = strictBase64(j["authenticationTag"]);
    const ciphertextMetadata =
      j["ciphertextMetadata"] === undefined
        ? Buffer.alloc(0)
        : strictBase64(j["ciphertextMetadata"]);
    const cdiv = strictBase64(j["ciphertextDataIntegrityValue"]);
    if (!ciphertext || !initializationVector || !authenticationTag || !ciphertextMetadata || !cdiv)
      throw malformed("Encrypt answer is not the spec's shape");
    const sealed = { ciphertext, ciphertextMetadata, initializationVector, authenticationTag };
    if (
      ciphertext.length !== plaintext.length ||
      (initializationVector.length !== 12 && initializationVector.length !== 16) ||
      authenticationTag.length !== 16 ||
      ciphertextMetadata.length > XKS_MAX_METADATA ||
      !xksIntegrityValue(aad, sealed).equals(cdiv)
    )
      throw invalidOutput("Encrypt answer fails its lengths or its CDIV");
    return sealed;
  }

  async decrypt(
    keyId: string,
    sealed: XksSealed,
    aad: Buffer | undefined,
    metadata: XksRequestMetadata,
  ): Promise<Buffer> {
    const j = await this.#call(`/keys/${externalKeyId(keyId)}/decrypt`, {
      requestMetadata: metadata,
      ...(aad && { additionalAuthenticatedData: aad.toString("base64") }),
      encryptionAlgorithm: "AES_GCM",
      ciphertext: sealed.ciphertext.toString("base64"),
      ...(sealed.ciphertextMetadata.length > 0 && {
        ciphertextMetadata: sealed.ciphertextMetadata.toString("base64"),
      }),
      initializationVector: sealed.initializationVector.toString("base64"),
      authenticationTag: sealed.authenticationTag.toString("base64"),
    });
    const plaintext = strictBase64(j["plaintext"]);
    if (!plaintext) throw malformed("Decrypt answer is not the spec's shape");
    if (plaintext.length !== sealed.ciphertext.length)
      throw invalidOutput("Decrypt answer is not as long as the ciphertext");
    return plaintext;
  }

  /** POSTs one signed request; the JSON object of a 200, else XksProxyError. */
  #call(suffix: string, body: object): Promise<Json> {
    const path = `${this.#o.uriPath}${suffix}`;
    const payload = Buffer.from(JSON.stringify(body));
    const headers = signSigV4(
      {
        method: "POST",
        url: path,
        headers: { host: this.#url.host, "content-type": XKS_CONTENT_TYPE },
        body: payload,
      },
      this.#o.credential,
      { service: XKS_SERVICE, region: this.#o.region, now: this.#o.now?.() ?? new Date() },
    );
    const timeoutMs = this.#o.timeoutMs ?? 250;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: XksProxyError | undefined, value?: Json) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value!);
      };
      const req = request(
        {
          host: this.#url.hostname,
          port: this.#url.port === "" ? 443 : Number(this.#url.port),
          servername: this.#url.hostname,
          path,
          method: "POST",
          headers: Object.assign({}, headers, { "content-length": String(payload.length) }),
          agent: this.#agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE) settle(malformed("answer too large"));
            else chunks.push(c);
          });
          res.on("error", (err) => settle(networkFailure(err)));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {
              json = undefined;
            }
            const object =
              typeof json === "object" && json !== null && !Array.isArray(json)
                ? (json as Json)
                : undefined;
            if (status === 200 && object) return settle(undefined, object);
            const errorName = object?.["errorName"];
            if (status !== 200 && typeof errorName === "string") {
              const message = object?.["errorMessage"];
              return settle(
                new XksProxyError({
                  kind: "proxy",
                  errorName,
                  status,
                  ...(typeof message === "string" && { message: message.slice(0, 512) }),
                }),
              );
            }
            settle(malformed(`HTTP ${status} without the spec's JSON body`));
          });
        },
      );
      const timer = setTimeout(
        () =>
          settle(
            new XksProxyError({ kind: "timeout", detail: `no answer within ${timeoutMs} ms` }),
          ),
        timeoutMs,
      );
      req.on("error", (err) => settle(networkFailure(err)));
      req.end(payload);
    });
  }
}

function externalKeyId(keyId: string): string {
  if (!EXTERNAL_KEY_ID.test(keyId))
    throw new TypeError("an external key id is 1 to 128 of A-Z, a-z, 0-9, '-', '.' and '_'");
  return keyId;
}

const TLS_ERROR = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HANDSHAKE|ALTNAME/;

function networkFailure(err: Error): XksProxyError {
  const code = (err as { code?: unknown }).code;
  const detail = typeof code === "string" ? `${code}: ${err.message}` : err.message;
  const failure: XksFailure =
    typeof code === "string" && TLS_ERROR.test(code)
      ? { kind: "tls", detail }
      : { kind: "unreachable", detail };
  return new XksProxyError(failure);
}
