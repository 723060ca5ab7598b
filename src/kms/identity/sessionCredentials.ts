/**
 * Temporary credentials issued by AssumeRoleWithWebIdentity, kept in the session
 * token itself so that every replica sharing the session key can verify them and
 * nothing is stored per session.
 *
 * SessionToken wire format (base64url):
 *   version (1 byte = 1) ‖ nonce (12) ‖ AES-256-GCM(session key, JSON payload) ‖ tag (16)
 * with AAD "keyhaven/sts-session/v1". The payload holds the access key id, the
 * secret access key, the principal and role ARNs, principal tags and the expiry.
 * Only the key service can open or forge a token; the secret inside never appears
 * anywhere but in the STS response and in the caller's signing.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";

const VERSION = 1;
const AAD = Buffer.from("keyhaven/sts-session/v1");

export interface SessionPayload {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The session's principal ARN (arn:aws:sts::<account>:assumed-role/<ns>/<name>). */
  readonly principal: string;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  /** The token's issuer and subject, for the audit record. */
  readonly provider: string;
  readonly subject: string;
}

export function sealSession(key: Buffer, payload: SessionPayload, nonce: Buffer): string {
  const iv = nonce.subarray(0, 12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(AAD);
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), "utf8"), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** The payload of a session token, or undefined if it is not one this key sealed. */
export function openSession(key: Buffer, token: string): SessionPayload | undefined {
  if (!/^[A-Za-z0-9_-]{40,8192}$/.test(token)) return undefined;
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length < 1 + 12 + 16 + 2 || bytes[0] !== VERSION) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(1, 13));
    decipher.setAAD(AAD);
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const json = Buffer.concat([
      decipher.update(bytes.subarray(13, bytes.length - 16)),
      decipher.final(),
    ]).toString("utf8");
    return JSON.parse(json) as SessionPayload;
  } catch {
    return undefined;
  }
}
