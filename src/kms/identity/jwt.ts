/**
 * JWT verification for Kubernetes ServiceAccount tokens (RFC 7519, JWS compact form)
 * against the issuer's JSON Web Key Set. Signatures: RS256/384/512, PS256/384/512,
 * ES256/384/512 (what the Kubernetes API server signs with). The header's `alg`
 * must agree with the key's type, "none" and HMAC are refused.
 */
import { createPublicKey, verify, constants, type KeyObject } from "node:crypto";

export class TokenError extends Error {
  override name = "TokenError";
  constructor(
    readonly code: "InvalidIdentityToken" | "ExpiredTokenException" | "IDPRejectedClaim",
    message: string,
  ) {
    super(message);
  }
}

interface Jwk {
  readonly kty?: string;
  readonly kid?: string;
  readonly use?: string;
  readonly alg?: string;
  readonly [k: string]: unknown;
}

export interface JwksKey {
  readonly kid?: string;
  readonly key: KeyObject;
  readonly kty: string;
}

/** Parses a JWKS document ({"keys": [...]}); throws Error with what is wrong. */
export function parseJwks(text: string): readonly JwksKey[] {
  const doc = JSON.parse(text) as { keys?: unknown };
  if (!doc || !Array.isArray(doc.keys) || doc.keys.length === 0)
    throw new Error('a JWKS is a JSON object {"keys": [...]} with at least one key');
  return (doc.keys as Jwk[])
    .filter((k) => k.use === undefined || k.use === "sig")
    .map((k) => ({
      ...(typeof k.kid === "string" && { kid: k.kid }),
      kty: String(k.kty),
      key: createPublicKey({ key: k as import("node:crypto").JsonWebKey, format: "jwk" }),
    }));
}

const ALGORITHMS: Record<string, { hash: string; kty: string; pss?: boolean; ec?: boolean }> = {
  RS256: { hash: "sha256", kty: "RSA" },
  RS384: { hash: "sha384", kty: "RSA" },
  RS512: { hash: "sha512", kty: "RSA" },
  PS256: { hash: "sha256", kty: "RSA", pss: true },
  PS384: { hash: "sha384", kty: "RSA", pss: true },
  PS512: { hash: "sha512", kty: "RSA", pss: true },
  ES256: { hash: "sha256", kty: "EC", ec: true },
  ES384: { hash: "sha384", kty: "EC", ec: true },
  ES512: { hash: "sha512", kty: "EC", ec: true },
};

export interface VerifyTokenOptions {
  readonly keys: readonly JwksKey[];
  readonly issuer: string;
  readonly audience: string;
  readonly now: Date;
  /** Allowed clock difference for nbf/iat, in seconds (expiry is never stretched). */
  readonly leewaySeconds?: number;
}

export type Claims = Readonly<Record<string, unknown>> & {
  readonly iss: string;
  readonly sub: string;
  readonly exp: number;
};

const invalid = (message: string) => new TokenError("InvalidIdentityToken", message);

function decodePart(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw invalid(`The web identity token's ${what} is not base64url-encoded JSON.`);
}

/** Verifies signature, issuer, audience and validity period; returns the claims. */
export function verifyToken(token: string, options: VerifyTokenOptions): Claims {
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)))
    throw invalid("The web identity token is not a JWT (three base64url parts separated by dots).");
  const [h, p, s] = parts as [string, string, string];
  const header = decodePart(h, "header");
  const alg = typeof header["alg"] === "string" ? header["alg"] : "";
  // Own properties only: a header naming "constructor" or "toString" is an unknown algorithm.
  const spec = Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined;
  if (!spec)
    throw invalid(
      `The web identity token's algorithm '${alg}' is not accepted; use RS256 or ES256.`,
    );
  const kid = typeof header["kid"] === "string" ? header["kid"] : undefined;
  const candidates = options.keys.filter(
    (k) => k.kty === spec.kty && (kid === undefined || k.kid === undefined || k.kid === kid),
  );
  if (candidates.length === 0)
    throw invalid(
      `No key of the issuer's JWKS matches the token (kid ${kid ?? "absent"}, ${alg}).`,
    );
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, "base64url");
  const ok = candidates.some((k) =>
    verify(
      spec.hash,
      data,
      {
        key: k.key,
        ...(spec.pss && {
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        }),
        ...(spec.ec && { dsaEncoding: "ieee-p1363" as const }),
      },
      signature,
    ),
  );
  if (!ok) throw invalid("The web identity token's signature is not valid.");

  const claims = decodePart(p, "payload");
  if (claims["iss"] !== options.issuer)
    throw invalid(
      `No OpenIDConnect provider found for issuer ${typeof claims["iss"] === "string" ? claims["iss"] : "(none)"}; this service trusts ${options.issuer}.`,
    );
  const aud = claims["aud"];
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(options.audience))
    throw invalid(
      `Incorrect token audience; request a ServiceAccount token with audience '${options.audience}'.`,
    );
  if (typeof claims["sub"] !== "string" || claims["sub"] === "")
    throw invalid("The web identity token has no subject (sub).");
  const exp = claims["exp"];
  if (typeof exp !== "number") throw invalid("The web identity token has no expiration (exp).");
  const now = options.now.getTime() / 1000;
  const leeway = options.leewaySeconds ?? 60;
  if (exp <= now)
    throw new TokenError(
      "ExpiredTokenException",
      `Token expired: current date/time ${new Date(now * 1000).toISOString()} must be before the expiration date/time ${new Date(exp * 1000).toISOString()}.`,
    );
  const nbf = claims["nbf"];
  if (typeof nbf === "number" && nbf > now + leeway)
    throw invalid("The web identity token is not valid yet (nbf is in the future).");
  const iat = claims["iat"];
  if (typeof iat === "number" && iat > now + leeway)
    throw invalid("The web identity token was issued in the future (iat); check the clocks.");
  return claims as Claims;
}
