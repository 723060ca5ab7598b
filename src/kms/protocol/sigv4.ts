/**
 * AWS Signature Version 4 verification for requests signed in the Authorization
 * header (what every AWS SDK, the AWS CLI and boto3 send). The server rebuilds the
 * canonical request from what it received and recomputes the signature with the
 * caller's secret; the access key id alone proves nothing.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
import { createHash, createHmac, hash, timingSafeEqual } from "node:crypto";
import { KmsError } from "../errors.js";
import type { SigningCredential } from "../identity/signingCredential.js";

export interface SignedRequest {
  readonly method: string;
  /** Path and query as received, e.g. "/" or "/?Action=x". */
  readonly url: string;
  /** Header values by lowercase name, each as the list of values received. */
  readonly headers: Readonly<Record<string, readonly string[] | undefined>>;
  readonly body: Buffer;
}

export interface VerifyOptions<C extends SigningCredential> {
  readonly service: string;
  /**
   * The region requests must be signed for; undefined accepts any (the XKS proxy: AWS KMS
   * signs with the region it calls from, not the proxy's).
   */
  readonly region: string | undefined;
  readonly now: Date;
  /** Finds a credential; temporary credentials are found with their session token. */
  readonly lookup: (accessKeyId: string, sessionToken?: string) => C | undefined;
  /** Headers that must be covered by the signature besides host (e.g. x-amz-target). */
  readonly requiredSignedHeaders?: readonly string[];
}

const ALGORITHM = "AWS4-HMAC-SHA256";
const MAX_SKEW_MS = 5 * 60 * 1000;

const invalid = (message: string) => new KmsError("InvalidSignatureException", message);
const incomplete = (message: string) => new KmsError("IncompleteSignatureException", message);

/**
 * A derived signing key, with its HMAC-SHA256 pads: verifying a request then costs two
 * one-shot hashes instead of an Hmac object (which costs about four times as much).
 */
interface SigningKey {
  readonly key: Buffer;
  /** key ⊕ ipad (64 bytes: SHA-256's block). */
  readonly inner: Buffer;
  /** key ⊕ opad. */
  readonly outer: Buffer;
}

const BLOCK = 64;

/** Caches derived signing keys per credential and scope: deriving one costs four HMACs. */
const signingKeys = new WeakMap<SigningCredential, Map<string, SigningKey>>();

function signingKey(
  credential: SigningCredential,
  date: string,
  region: string,
  service: string,
): SigningKey {
  let perScope = signingKeys.get(credential);
  if (!perScope) {
    perScope = new Map();
    signingKeys.set(credential, perScope);
  }
  const scope = `${date}/${region}/${service}`;
  let entry = perScope.get(scope);
  if (!entry) {
    const kDate = createHmac("sha256", `AWS4${credential.secretAccessKey}`).update(date).digest();
    const kRegion = createHmac("sha256", kDate).update(region).digest();
    const kService = createHmac("sha256", kRegion).update(service).digest();
    const key = createHmac("sha256", kService).update("aws4_request").digest();
    const inner = Buffer.alloc(BLOCK, 0x36);
    const outer = Buffer.alloc(BLOCK, 0x5c);
    for (let i = 0; i < key.length; i++) {
      inner[i]! ^= key[i]!;
      outer[i]! ^= key[i]!;
    }
    entry = { key, inner, outer };
    if (perScope.size > 64) perScope.clear();
    perScope.set(scope, entry);
  }
  return entry;
}

/**
 * HMAC-SHA256 (RFC 2104) of `message` (one byte per character) under a signing key, as 32 bytes:
 * H(outer ‖ H(inner ‖ message)). The same bytes as createHmac (sigv4.test.ts checks it).
 */
function hmacSha256(key: SigningKey, message: string): Buffer {
  const innerInput = Buffer.allocUnsafe(BLOCK + message.length);
  key.inner.copy(innerInput, 0);
  innerInput.write(message, BLOCK, "latin1");
  const outerInput = Buffer.allocUnsafe(BLOCK + 32);
  key.outer.copy(outerInput, 0);
  // "binary" (latin1) output: the digest's bytes as a string, far cheaper than a Buffer.
  outerInput.write(hash("sha256", innerInput, "binary"), BLOCK, "latin1");
  return Buffer.from(hash("sha256", outerInput, "binary"), "latin1");
}

/** Trims and collapses inner whitespace runs; most values have none, so test before replacing. */
function canonicalHeaderValue(value: string): string {
  const trimmed = value.trim();
  return INNER_WHITESPACE.test(trimmed) ? trimmed.replace(/\s+/g, " ") : trimmed;
}
/** Any whitespace other than a lone space: what `/\s+/g → " "` would change. */
const INNER_WHITESPACE = /\s\s|[^\S ]/;

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, "%20"));
  } catch {
    throw invalid("The request URI is not correctly encoded.");
  }
}

function canonicalUri(path: string): string {
  // Non-S3 services encode each segment once more on top of its wire form.
  return path === "/" ? "/" : path.split("/").map(uriEncode).join("/");
}

function canonicalQuery(query: string): string {
  if (!query) return "";
  return query
    .split("&")
    .filter((p) => p.length > 0)
    .map((pair) => {
      const eq = pair.indexOf("=");
      const k = eq < 0 ? pair : pair.slice(0, eq);
      const v = eq < 0 ? "" : pair.slice(eq + 1);
      return [uriEncode(safeDecode(k)), uriEncode(safeDecode(v))] as const;
    })
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string): ParsedAuthorization {
  if (!header.startsWith(`${ALGORITHM} `)) {
    throw incomplete(`Unsupported authorization type: only ${ALGORITHM} is accepted.`);
  }
  // "Name=value" parts between commas (the last of a name counts), scanned in place.
  const fields: Record<"Credential" | "SignedHeaders" | "Signature", string | undefined> = {
    Credential: undefined,
    SignedHeaders: undefined,
    Signature: undefined,
  };
  for (let at = ALGORITHM.length + 1; at < header.length;) {
    let end = header.indexOf(",", at);
    if (end < 0) end = header.length;
    const eq = header.indexOf("=", at);
    if (eq > at && eq < end) {
      const name = header.slice(at, eq).trim();
      if (name === "Credential" || name === "SignedHeaders" || name === "Signature")
        fields[name] = header.slice(eq + 1, end).trim();
    }
    at = end + 1;
  }
  const missing = (["Credential", "SignedHeaders", "Signature"] as const).filter((f) => !fields[f]);
  if (missing.length > 0) {
    throw incomplete(
      missing.map((f) => `Authorization header requires '${f}' parameter.`).join(" ") +
        ` Authorization=${ALGORITHM}`,
    );
  }
  const scope = fields.Credential!.split("/");
  if (scope.length !== 5) {
    throw incomplete(
      "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.",
    );
  }
  const [accessKeyId, date, region, service, terminator] = scope as [
    string,
    string,
    string,
    string,
    string,
  ];
  const signature = fields.Signature!;
  if (!/^[0-9a-f]{64}$/.test(signature)) throw invalid("The request signature is malformed.");
  return {
    accessKeyId,
    date,
    region,
    service,
    terminator,
    signedHeaders: fields.SignedHeaders!.split(";"),
    signature,
  };
}

function amzDate(request: SignedRequest): string {
  const value = request.headers["x-amz-date"]?.[0];
  if (value) return value;
  const date = request.headers["date"]?.[0];
  if (!date)
    throw incomplete(
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
  const parsed = new Date(date);
  if (Number.isNaN(parsed.getTime()))
    throw incomplete("The 'Date' header is not a valid HTTP date.");
  return parsed
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) throw incomplete(`Date must be in ISO-8601 'basic format'. Got '${value}'.`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

const basicFormat = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");

/**
 * Verifies the request's signature and returns the credential that signed it.
 * Throws KmsError with AWS's authentication error codes otherwise.
 */
export function verifySigV4<C extends SigningCredential>(
  request: SignedRequest,
  options: VerifyOptions<C>,
): C {
  const authorization = request.headers["authorization"]?.[0];
  if (!authorization)
    throw new KmsError("MissingAuthenticationTokenException", "Missing Authentication Token");
  const auth = parseAuthorization(authorization);

  const requestDate = amzDate(request);
  const signedAt = parseAmzDate(requestDate);
  const skew = signedAt.getTime() - options.now.getTime();
  if (skew < -MAX_SKEW_MS) {
    throw invalid(
      `Signature expired: ${requestDate} is now earlier than ${basicFormat(new Date(options.now.getTime() - MAX_SKEW_MS))} (${basicFormat(options.now)} - 5 min.)`,
    );
  }
  if (skew > MAX_SKEW_MS) {
    throw invalid(
      `Signature not yet current: ${requestDate} is still later than ${basicFormat(new Date(options.now.getTime() + MAX_SKEW_MS))} (${basicFormat(options.now)} + 5 min.)`,
    );
  }
  if (auth.terminator !== "aws4_request")
    throw invalid("Credential should be scoped with a valid terminator: 'aws4_request'.");
  if (auth.service !== options.service)
    throw invalid(`Credential should be scoped to correct service: '${options.service}'.`);
  if (options.region !== undefined && auth.region !== options.region) {
    throw invalid(
      `Credential should be scoped to a valid region. This endpoint serves '${options.region}', not '${auth.region}'.`,
    );
  }
  if (auth.date !== requestDate.slice(0, 8)) {
    throw invalid(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${requestDate.slice(0, 8)}'.`,
    );
  }

  const signed = new Set(auth.signedHeaders);
  for (const required of ["host", ...(options.requiredSignedHeaders ?? [])]) {
    if (request.headers[required] && !signed.has(required))
      throw invalid(`'${required}' must be a signed header.`);
  }
  if (!signed.has("host")) throw invalid("'Host' must be a signed header.");
  if (request.headers["x-amz-date"] && !signed.has("x-amz-date"))
    throw invalid("'X-Amz-Date' must be a signed header.");

  const token = request.headers["x-amz-security-token"]?.[0];
  const credential = options.lookup(auth.accessKeyId, token);
  if (!credential)
    throw new KmsError(
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  if (credential.sessionToken !== undefined) {
    if (token === undefined || !constantTimeEqual(token, credential.sessionToken)) {
      throw new KmsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (credential.expiration && credential.expiration.getTime() <= options.now.getTime()) {
      throw new KmsError(
        "ExpiredTokenException",
        "The security token included in the request is expired",
      );
    }
  } else if (token !== undefined) {
    throw new KmsError(
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  }

  // crypto.hash is the one-shot form: no Hash object per call.
  const bodyHash = hash("sha256", request.body, "hex");
  const declaredHash = request.headers["x-amz-content-sha256"]?.[0];
  if (declaredHash !== undefined && declaredHash !== bodyHash) {
    throw invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  const canonicalRequest = canonicalRequestOf(request, auth.signedHeaders, bodyHash);
  const stringToSign = `${ALGORITHM}\n${requestDate}\n${auth.date}/${auth.region}/${auth.service}/aws4_request\n${hash("sha256", canonicalRequest, "hex")}`;
  const expected = hmacSha256(
    signingKey(credential, auth.date, auth.region, auth.service),
    stringToSign,
  );
  if (!timingSafeEqual(expected, Buffer.from(auth.signature, "hex"))) {
    throw invalid(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
  }
  return credential;
}

/** The canonical request of SigV4 over `signedHeaders` (lower-case names, in order). */
function canonicalRequestOf(
  request: SignedRequest,
  signedHeaders: readonly string[],
  bodyHash: string,
): string {
  const q = request.url.indexOf("?");
  const path = q < 0 ? request.url : request.url.slice(0, q);
  const query = q < 0 ? "" : request.url.slice(q + 1);
  let canonicalHeaders = "";
  for (const name of signedHeaders) {
    const values = request.headers[name];
    canonicalHeaders += `${name}:${values === undefined ? "" : values.length === 1 ? canonicalHeaderValue(values[0]!) : values.map(canonicalHeaderValue).join(",")}\n`;
  }
  return `${request.method}\n${canonicalUri(path)}\n${canonicalQuery(query)}\n${canonicalHeaders}\n${signedHeaders.join(";")}\n${bodyHash}`;
}

export interface SignOptions {
  readonly service: string;
  readonly region: string;
  readonly now: Date;
}

/**
 * Signs a request the way AWS SDKs do (for Keyhaven's own clients, e.g. the XKS client):
 * every header given is signed (names lower-case, `host` among them). Returns the headers to
 * send: those given plus X-Amz-Date and Authorization.
 */
export function signSigV4(
  request: Omit<SignedRequest, "headers"> & { readonly headers: Readonly<Record<string, string>> },
  credential: SigningCredential,
  options: SignOptions,
): Record<string, string> {
  const amzDate = basicFormat(options.now);
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = Object.assign({}, request.headers, {
    "x-amz-date": amzDate,
  });
  if (credential.sessionToken !== undefined)
    headers["x-amz-security-token"] = credential.sessionToken;
  const signedHeaders = Object.keys(headers).sort();
  const canonicalRequest = canonicalRequestOf(
    {
      method: request.method,
      url: request.url,
      headers: Object.fromEntries(signedHeaders.map((h) => [h, [headers[h]!]])),
      body: request.body,
    },
    signedHeaders,
    hash("sha256", request.body, "hex"),
  );
  const scope = `${date}/${options.region}/${options.service}/aws4_request`;
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${hash("sha256", canonicalRequest, "hex")}`;
  const signature = createHmac(
    "sha256",
    signingKey(credential, date, options.region, options.service).key,
  )
    .update(stringToSign)
    .digest("hex");
  headers["authorization"] =
    `${ALGORITHM} Credential=${credential.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(";")}, Signature=${signature}`;
  return headers;
}

/** Compares two secrets without leaking where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

/**
 * A MAC over an answer to a SigV4-signed request, under that request's signing key
 * (HMAC-SHA256 of the request's signature and `data`): whoever checks it against the
 * Authorization header it sent learns that the answer comes from a holder of the same
 * secret, for this request and no other (peering, docs/multi-region.md).
 */
export function signerProof(
  authorization: string,
  credential: SigningCredential,
  data: string,
): string {
  const auth = parseAuthorization(authorization);
  return createHmac("sha256", signingKey(credential, auth.date, auth.region, auth.service).key)
    .update(`keyhaven-signer-proof\n${auth.signature}\n${data}`)
    .digest("hex");
}
