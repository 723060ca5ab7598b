import { SignatureV4 } from "@smithy/signature-v4";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Sha256 } from "../../../test/support/sha256.js";
import { KmsError } from "../errors.js";
import type { SigningCredential } from "../identity/signingCredential.js";
import { signSigV4, verifySigV4, type SignedRequest } from "./sigv4.js";

const SIGNED_AT = new Date("2026-11-28T12:00:00Z");
const STATIC: SigningCredential = {
  accessKeyId: "AKIAUNITTEST0000001",
  secretAccessKey: "unit-test-secret-key-0123456789",
};
const TEMPORARY: SigningCredential = {
  accessKeyId: "ASIAUNITTEST0000002",
  secretAccessKey: "temporary-secret-key-0123456789",
  sessionToken: "session-token-value",
  expiration: new Date("2026-11-28T13:00:00Z"),
};
const credentials = new Map([STATIC, TEMPORARY].map((c) => [c.accessKeyId, c]));
const BODY = '{"KeyId":"alias/orders","Plaintext":"aGVsbG8="}';

interface SignOptions {
  readonly body?: string | Buffer;
  readonly region?: string;
  readonly service?: string;
  readonly credential?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly date?: Date;
  readonly query?: Record<string, string>;
  /** The AWS SDKs do not send x-amz-content-sha256 for KMS; the body is then covered by the signature alone. */
  readonly contentSha256?: boolean;
}

/** A request signed by @smithy/signature-v4, the signer every AWS JS SDK uses, as the server receives it. */
async function signed(
  options: SignOptions = {},
): Promise<SignedRequest & { headers: Record<string, string[]> }> {
  const body = Buffer.from(options.body ?? BODY);
  const signer = new SignatureV4({
    service: options.service ?? "kms",
    region: options.region ?? "us-east-1",
    credentials: options.credential ?? STATIC,
    sha256: Sha256,
    applyChecksum: options.contentSha256 ?? false,
  });
  const request = await signer.sign(
    {
      method: "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 8080,
      path: "/",
      ...(options.query && { query: options.query }),
      headers: {
        host: "127.0.0.1:8080",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "TrentService.Encrypt",
      },
      body,
    },
    { signingDate: options.date ?? SIGNED_AT },
  );
  const query = options.query
    ? `?${Object.entries(options.query)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join("&")}`
    : "";
  return {
    method: "POST",
    url: `/${query}`,
    headers: Object.fromEntries(
      Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), [v]]),
    ),
    body,
  };
}

function verify(request: SignedRequest, now = SIGNED_AT) {
  return verifySigV4(request, {
    service: "kms",
    region: "us-east-1",
    now,
    lookup: (id) => credentials.get(id),
    requiredSignedHeaders: ["x-amz-target"],
  });
}

/** The AWS error code (and message) a verification throws. */
function rejection(request: SignedRequest, now = SIGNED_AT): { code: string; message: string } {
  try {
    verify(request, now);
  } catch (err) {
    if (err instanceof KmsError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("the request verified, but it should not have");
}

const withHeader = (r: SignedRequest, name: string, value: string | undefined): SignedRequest => {
  const headers: Record<string, readonly string[] | undefined> = { ...r.headers };
  if (value === undefined) delete headers[name];
  else headers[name] = [value];
  return { ...r, headers };
};
const authorization = (r: SignedRequest) => r.headers["authorization"]![0]!;

describe("verifySigV4 with requests signed by @smithy/signature-v4", () => {
  it("accepts a correctly signed request and returns its credential", async () => {
    expect(verify(await signed())).toBe(STATIC);
    expect(verify(await signed({ contentSha256: true }))).toBe(STATIC);
    expect(verify(await signed({ body: "" }))).toBe(STATIC);
    expect(verify(await signed({ query: { b: "2", a: "1 x", "c*": "(y)" } }))).toBe(STATIC);
  });

  it("rejects a changed body byte, target, date, region, service, secret or signed-headers list", async () => {
    const good = await signed();
    const mismatch = "InvalidSignatureException";

    const body = Buffer.from(good.body);
    body[10]! ^= 1;
    expect(rejection({ ...good, body }).code).toBe(mismatch);

    const declared = await signed({ contentSha256: true });
    expect(rejection({ ...declared, body }).code).toBe(mismatch);

    expect(rejection(withHeader(good, "x-amz-target", "TrentService.Decrypt")).code).toBe(mismatch);
    expect(rejection(withHeader(good, "x-amz-date", "20261128T120001Z")).code).toBe(mismatch);

    const region = rejection(await signed({ region: "eu-west-1" }));
    expect(region.code).toBe(mismatch);
    expect(region.message).toContain("This endpoint serves 'us-east-1', not 'eu-west-1'");
    expect(rejection(await signed({ service: "s3" }))).toEqual({
      code: mismatch,
      message: "Credential should be scoped to correct service: 'kms'.",
    });
    expect(
      rejection(
        await signed({ credential: { ...STATIC, secretAccessKey: "another-secret-entirely" } }),
      ).message,
    ).toMatch(/^The request signature we calculated does not match/);

    // Dropping a signed header from the list (the signature no longer covers it) …
    const noContentType = authorization(good).replace("content-type;", "");
    expect(rejection(withHeader(good, "authorization", noContentType)).code).toBe(mismatch);
    // … and a request whose signature never covered X-Amz-Target.
    const noTarget = authorization(good).replace(";x-amz-target", "");
    expect(rejection(withHeader(good, "authorization", noTarget))).toEqual({
      code: mismatch,
      message: "'x-amz-target' must be a signed header.",
    });
    // A signature that names another date in its scope.
    const scope = authorization(good).replace("/20261128/", "/20261127/");
    expect(rejection(withHeader(good, "authorization", scope)).code).toBe(mismatch);
    // A flipped signature character.
    const sig = authorization(good);
    const flipped = sig.slice(0, -1) + (sig.endsWith("0") ? "1" : "0");
    expect(rejection(withHeader(good, "authorization", flipped)).code).toBe(mismatch);
  });

  it("any single-byte change to the body is rejected (property)", async () => {
    const good = await signed();
    fc.assert(
      fc.property(
        fc.nat({ max: good.body.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, mask) => {
          const body = Buffer.from(good.body);
          body[at]! ^= mask;
          expect(rejection({ ...good, body }).code).toBe("InvalidSignatureException");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("accepts what smithy signs with any secret, Region and body: the HMAC is the standard one (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 80 }),
        fc.stringMatching(/^[a-z]{2}-[a-z]{1,12}-[1-9]$/),
        fc.uint8Array({ maxLength: 2048 }),
        async (secretAccessKey, region, bytes) => {
          const credential = { accessKeyId: "AKIAPROPERTY0000001", secretAccessKey };
          const request = await signed({ credential, region, body: Buffer.from(bytes) });
          const verified = verifySigV4(request, {
            service: "kms",
            region,
            now: SIGNED_AT,
            lookup: (id) => (id === credential.accessKeyId ? credential : undefined),
          });
          expect(verified).toBe(credential);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("allows a clock skew of exactly 5 minutes either way, and no more", async () => {
    const request = await signed();
    const at = (ms: number) => new Date(SIGNED_AT.getTime() + ms);
    const FIVE_MIN = 5 * 60 * 1000;
    expect(verify(request, at(FIVE_MIN))).toBe(STATIC);
    expect(verify(request, at(-FIVE_MIN))).toBe(STATIC);
    expect(rejection(request, at(FIVE_MIN + 1000))).toEqual({
      code: "InvalidSignatureException",
      message:
        "Signature expired: 20261128T120000Z is now earlier than 20261128T120001Z (20261128T120501Z - 5 min.)",
    });
    expect(rejection(request, at(-FIVE_MIN - 1000))).toEqual({
      code: "InvalidSignatureException",
      message:
        "Signature not yet current: 20261128T120000Z is still later than 20261128T115959Z (20261128T115459Z + 5 min.)",
    });
  });

  it("answers a missing or malformed Authorization with AWS's codes", async () => {
    const good = await signed();
    expect(rejection(withHeader(good, "authorization", undefined))).toEqual({
      code: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    });
    expect(rejection(withHeader(good, "authorization", "Basic dXNlcjpwYXNz")).code).toBe(
      "IncompleteSignatureException",
    );
    const noSignature = authorization(good).replace(/, Signature=[0-9a-f]+/, "");
    expect(rejection(withHeader(good, "authorization", noSignature))).toEqual({
      code: "IncompleteSignatureException",
      message:
        "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256",
    });
    const shortScope = authorization(good).replace("/us-east-1/kms/aws4_request", "/kms");
    expect(rejection(withHeader(good, "authorization", shortScope)).code).toBe(
      "IncompleteSignatureException",
    );
    const notHex = authorization(good).replace(/Signature=[0-9a-f]+/, "Signature=xyz");
    expect(rejection(withHeader(good, "authorization", notHex)).code).toBe(
      "InvalidSignatureException",
    );
    expect(rejection(withHeader(good, "x-amz-date", undefined)).code).toBe(
      "IncompleteSignatureException",
    );
    expect(rejection(withHeader(good, "x-amz-date", "yesterday")).code).toBe(
      "IncompleteSignatureException",
    );
    const stranger = await signed({
      credential: { accessKeyId: "AKIANOBODY000000000", secretAccessKey: "whatever-secret" },
    });
    expect(rejection(stranger)).toEqual({
      code: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    });
  });

  it("requires the session token of temporary credentials, and only theirs", async () => {
    expect(verify(await signed({ credential: TEMPORARY }))).toBe(TEMPORARY);
    const withoutToken = await signed({
      credential: {
        accessKeyId: TEMPORARY.accessKeyId,
        secretAccessKey: TEMPORARY.secretAccessKey,
      },
    });
    expect(rejection(withoutToken).code).toBe("UnrecognizedClientException");
    const wrongToken = await signed({
      credential: { ...TEMPORARY, sessionToken: "another-token" },
    });
    expect(rejection(wrongToken).code).toBe("UnrecognizedClientException");
    const expired = new Date("2026-11-28T13:00:00Z");
    expect(rejection(await signed({ credential: TEMPORARY, date: expired }), expired)).toEqual({
      code: "ExpiredTokenException",
      message: "The security token included in the request is expired",
    });
    const staticWithToken = await signed({
      credential: { ...STATIC, sessionToken: "stray-token" },
    });
    expect(rejection(staticWithToken).code).toBe("UnrecognizedClientException");
  });
});

describe("signSigV4 (Keyhaven's own clients, e.g. the XKS client)", () => {
  it("signs exactly as @smithy/signature-v4 does, and the verifier accepts it", async () => {
    const body = Buffer.from('{"requestMetadata":{"kmsOperation":"KmsHealthCheck"}}');
    const headers = { host: "xks.example.com:8443", "content-type": "application/json" };
    const path = "/tenant-a/kms/xks/v1/health";
    const mine = signSigV4({ method: "POST", url: path, headers, body }, STATIC, {
      service: "kms-xks-proxy",
      region: "eu-west-1",
      now: SIGNED_AT,
    });
    const smithy = await new SignatureV4({
      service: "kms-xks-proxy",
      region: "eu-west-1",
      credentials: STATIC,
      sha256: Sha256,
      applyChecksum: false,
    }).sign(
      {
        method: "POST",
        protocol: "https:",
        hostname: "xks.example.com",
        port: 8443,
        path,
        headers,
        body,
      },
      { signingDate: SIGNED_AT },
    );
    expect(mine["authorization"]).toBe(smithy.headers["authorization"]);
    const received = Object.fromEntries(Object.entries(mine).map(([k, v]) => [k, [v]]));
    expect(
      verifySigV4(
        { method: "POST", url: path, headers: received, body },
        {
          service: "kms-xks-proxy",
          region: undefined,
          now: SIGNED_AT,
          lookup: (id) => credentials.get(id),
        },
      ),
    ).toBe(STATIC);
  });
});
