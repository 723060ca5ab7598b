/**
 * Pre-signs KMS JSON requests with @smithy/signature-v4 (what the AWS SDKs use), so
 * the load generator replays fixed bytes and spends no CPU on signing. The signing
 * date is fixed per call: sign again before each load run, so every run stays well
 * inside the server's ±5 minute skew window however long the whole bench takes.
 */
import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/** The hash constructor SignatureV4 expects (an HMAC when given a secret), on node:crypto. */
class Sha256 {
  #hash;
  constructor(secret) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(data) {
    this.#hash.update(typeof data === "string" ? Buffer.from(data, "utf8") : data);
  }
  async digest() {
    return new Uint8Array(this.#hash.digest());
  }
}

/**
 * @param {{ url: string, region: string, credential: { accessKeyId: string, secretAccessKey: string } }} target
 * @param {string} operation e.g. "Encrypt"
 * @param {object} input the JSON body
 * @param {Date} [signingDate]
 * @returns {Promise<{ method: string, path: string, headers: Record<string, string>, body: string }>}
 */
export async function signKmsRequest(target, operation, input, signingDate = new Date()) {
  const url = new URL(target.url);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({
    credentials: target.credential,
    region: target.region,
    service: "kms",
    sha256: Sha256,
  });
  const signed = await signer.sign(
    {
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: "/",
      query: {},
      headers: {
        host: url.host,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `TrentService.${operation}`,
      },
      body,
    },
    { signingDate },
  );
  return { method: "POST", path: "/", headers: { ...signed.headers }, body };
}

/** Sends one signed KMS call and returns { status, json } (for setup and sanity checks). */
export async function callKms(target, operation, input) {
  const request = await signKmsRequest(target, operation, input);
  // fetch sets Host itself (to the same value that was signed).
  const headers = { ...request.headers };
  delete headers.host;
  const response = await globalThis.fetch(new URL(request.path, target.url), {
    method: request.method,
    headers,
    body: request.body,
  });
  return { status: response.status, json: await response.json() };
}
