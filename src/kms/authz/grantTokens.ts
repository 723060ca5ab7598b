/**
 * Grant tokens. Wire format (base64url, 66 characters):
 *
 *   version (1 byte = 1) ‖ grant id (32 bytes; the GrantId's 64 hex) ‖ nonce (16 random bytes)
 *
 * Every CreateGrant returns a fresh token, even for the same grant (Name
 * idempotency). A token only names its grant: the grant itself comes from the
 * store, which is strongly consistent, so a new grant is usable at once, with or
 * without its token, and a revoked grant's token allows nothing.
 */
const VERSION = 1;
const TOKEN = /^[A-Za-z0-9_-]{66}$/;

export function encodeGrantToken(grantId: string, nonce: Buffer): string {
  return Buffer.concat([
    Buffer.of(VERSION),
    Buffer.from(grantId, "hex"),
    nonce.subarray(0, 16),
  ]).toString("base64url");
}

/** The grant id a token names, or undefined if it is not a Keyhaven grant token. */
export function decodeGrantToken(token: string): string | undefined {
  if (!TOKEN.test(token)) return undefined;
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length !== 49 || bytes[0] !== VERSION) return undefined;
  return bytes.subarray(1, 33).toString("hex");
}
