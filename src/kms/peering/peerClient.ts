/**
 * Calls to other Keyhaven instances (peers, docs/multi-region.md). A call is an ordinary
 * KMS JSON request, SigV4-signed for the peer's Region with this instance's peering
 * credential; the peer authenticates and authorizes it like any request. A peer that
 * cannot be reached is a retryable DependencyTimeoutException; an error the peer answers
 * comes back as that error.
 */
import { timingSafeEqual } from "node:crypto";
import { errorStatus, kmsError, KmsError, type KmsErrorCode } from "../errors.js";
import { signerProof, signSigV4 } from "../protocol/sigv4.js";

export interface PeerCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What KeyhavenGetPeeringKey's Proof is a MAC of (protocol/sigv4.ts signerProof). */
export const peeringKeyProof = (region: string, publicKey: string) =>
  `keyhaven/peering-key\n${region}\n${publicKey}`;

/** The headers of a SigV4-signed KMS JSON request (the form src/kms/protocol/sigv4.ts verifies). */
export function signKmsRequest(
  url: URL,
  region: string,
  target: string,
  body: string,
  credential: PeerCredential,
  now: Date,
): Record<string, string> {
  return signSigV4(
    {
      method: "POST",
      url: url.pathname || "/",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        host: url.host,
        "x-amz-target": target,
      },
      body: Buffer.from(body),
    },
    credential,
    { service: "kms", region, now },
  );
}

export interface PeerClientOptions {
  /** Peer URL by Region (other processes, and this process's own URL for the Regions it serves). */
  readonly urls: ReadonlyMap<string, string>;
  readonly credential: PeerCredential;
  readonly now: () => Date;
  readonly timeoutMs?: number;
}

export class PeerClient {
  readonly #options: PeerClientOptions;

  constructor(options: PeerClientOptions) {
    this.#options = options;
  }

  /** Regions this instance can reach. */
  get regions(): readonly string[] {
    return [...this.#options.urls.keys()];
  }

  has(region: string): boolean {
    return this.#options.urls.has(region);
  }

  /** One KMS call (`TrentService.<operation>`) to the peer serving `region`. */
  async call(region: string, operation: string, input: object): Promise<Record<string, unknown>> {
    return (await this.#send(region, operation, input)).reply;
  }

  /**
   * The peering public key (SPKI DER) of the instance serving `region`, authenticated: its
   * answer must carry a MAC under this request's SigV4 signing key, which only a holder of
   * the peering credential's secret can make (a substituted key is refused, TLS or not).
   */
  async peeringKey(region: string): Promise<Buffer> {
    const { reply, authorization } = await this.#send(region, "KeyhavenGetPeeringKey", {});
    const publicKey = reply["PublicKey"];
    const proof = reply["Proof"];
    if (typeof publicKey !== "string" || typeof proof !== "string")
      throw kmsError("KMSInternalException", `Region ${region} sent no peering key.`);
    const expected = Buffer.from(
      signerProof(authorization, this.#options.credential, peeringKeyProof(region, publicKey)),
      "hex",
    );
    const given = Buffer.from(proof, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw kmsError(
        "KMSInternalException",
        `The peering key from Region ${region} is not proven by the peering credential; is ${this.#options.urls.get(region)} really that Region's Keyhaven instance, with the same peering credential?`,
      );
    return Buffer.from(publicKey, "base64");
  }

  async #send(
    region: string,
    operation: string,
    input: object,
  ): Promise<{ reply: Record<string, unknown>; authorization: string }> {
    const base = this.#options.urls.get(region);
    if (base === undefined)
      throw kmsError(
        "UnsupportedOperationException",
        `Region ${region} is not a peer of this Keyhaven instance; start it with --peer ${region}=URL.`,
      );
    const url = new URL(`${base}/`);
    const body = JSON.stringify(input);
    const headers = signKmsRequest(
      url,
      region,
      `TrentService.${operation}`,
      body,
      this.#options.credential,
      this.#options.now(),
    );
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 10_000),
      });
      text = await response.text();
    } catch {
      throw kmsError(
        "DependencyTimeoutException",
        `The Keyhaven instance of Region ${region} (${base}) did not answer; nothing was changed there by this request. Try again.`,
      );
    }
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(text) as Record<string, unknown>;
    } catch {
      reply = {};
    }
    if (response.ok) return { reply, authorization: headers["authorization"]! };
    const code = typeof reply["__type"] === "string" ? reply["__type"] : "";
    const message = typeof reply["message"] === "string" ? reply["message"] : "";
    if (Object.hasOwn(errorStatus, code))
      throw new KmsError(code as KmsErrorCode, `Region ${region}: ${message}`);
    throw kmsError(
      "DependencyTimeoutException",
      `The Keyhaven instance of Region ${region} answered HTTP ${response.status}; try again.`,
    );
  }
}
