import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseJwks, TokenError, verifyToken } from "./jwt.js";
import { openSession, sealSession, type SessionPayload } from "./sessionCredentials.js";

const now = new Date("2026-11-28T12:00:00Z");
const sec = Math.floor(now.getTime() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

function jwt(
  alg: "RS256" | "ES256",
  key: import("node:crypto").KeyObject,
  claims: object,
  kid = "k1",
) {
  const head = `${b64({ alg, kid })}.${b64(claims)}`;
  const signature =
    alg === "RS256"
      ? sign("sha256", Buffer.from(head), key)
      : sign("sha256", Buffer.from(head), { key, dsaEncoding: "ieee-p1363" });
  return `${head}.${signature.toString("base64url")}`;
}

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwks = parseJwks(
  JSON.stringify({
    keys: [
      { ...rsa.publicKey.export({ format: "jwk" }), kid: "k1", use: "sig" },
      { ...ec.publicKey.export({ format: "jwk" }), kid: "k2", use: "sig" },
    ],
  }),
);
const claims = {
  iss: "https://issuer.example",
  aud: ["keyhaven"],
  sub: "system:serviceaccount:ns:sa",
  exp: sec + 600,
  iat: sec,
  nbf: sec,
};
const options = { keys: jwks, issuer: "https://issuer.example", audience: "keyhaven", now };
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof TokenError ? err.code : String(err);
  }
  return "ok";
};

describe("ServiceAccount token verification", () => {
  it("accepts RS256 and ES256 tokens from the JWKS", () => {
    expect(verifyToken(jwt("RS256", rsa.privateKey, claims), options).sub).toBe(claims.sub);
    expect(verifyToken(jwt("ES256", ec.privateKey, claims, "k2"), options).sub).toBe(claims.sub);
  });

  it("refuses wrong keys, algorithms, issuers, audiences and expired tokens", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(code(() => verifyToken(jwt("RS256", other.privateKey, claims), options))).toBe(
      "InvalidIdentityToken",
    );
    const none = `${b64({ alg: "none" })}.${b64(claims)}.`;
    expect(code(() => verifyToken(none, options))).toBe("InvalidIdentityToken");
    const hs = `${b64({ alg: "HS256", kid: "k1" })}.${b64(claims)}.${randomBytes(32).toString("base64url")}`;
    expect(code(() => verifyToken(hs, options))).toBe("InvalidIdentityToken");
    for (const bad of [{ iss: "https://other" }, { aud: "sts.amazonaws.com" }, { sub: "" }])
      expect(
        code(() => verifyToken(jwt("RS256", rsa.privateKey, { ...claims, ...bad }), options)),
      ).toBe("InvalidIdentityToken");
    expect(
      code(() => verifyToken(jwt("RS256", rsa.privateKey, { ...claims, exp: sec }), options)),
    ).toBe("ExpiredTokenException");
    // A payload changed after signing fails the signature.
    const good = jwt("RS256", rsa.privateKey, claims).split(".");
    const forged = `${good[0]}.${b64({ ...claims, sub: "system:serviceaccount:kube-system:admin" })}.${good[2]}`;
    expect(code(() => verifyToken(forged, options))).toBe("InvalidIdentityToken");
  });
});

describe("session tokens", () => {
  const key = randomBytes(32);
  const payload: SessionPayload = {
    accessKeyId: "ASIAAAAAAAAAAAAAAAAA",
    secretAccessKey: "secret",
    principal: "arn:aws:sts::000000000000:assumed-role/ns/sa",
    roleArn: "arn:aws:iam::000000000000:role/ns/sa",
    sessionName: "s",
    namespace: "ns",
    serviceAccount: "sa",
    tags: { "kubernetes-namespace": "ns" },
    expiresAt: 1,
    issuedAt: 0,
    provider: "https://issuer.example",
    subject: "system:serviceaccount:ns:sa",
  };

  it("round-trip, and any change to a token or another key makes it unreadable", () => {
    const token = sealSession(key, payload, randomBytes(12));
    expect(openSession(key, token)).toEqual(payload);
    expect(openSession(randomBytes(32), token)).toBeUndefined();
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const bytes = Buffer.from(token, "base64url");
        const i = at % bytes.length;
        bytes[i] = bytes[i]! ^ flip;
        return openSession(key, bytes.toString("base64url")) === undefined;
      }),
      { numRuns: 300 },
    );
    // The secret never shows in the token.
    expect(Buffer.from(token, "base64url").includes(Buffer.from(payload.secretAccessKey))).toBe(
      false,
    );
  });
});
