/**
 * Static credentials from the credentials file (format in DESIGN.md):
 *
 *   credentials:
 *     - accessKeyId: AKIAEXAMPLE
 *       secretAccessKey: example-secret
 *       principal: arn:aws:iam::000000000000:user/admin
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { parse, stringify } from "yaml";
import { z } from "zod";
import type { SigningCredential } from "../protocol/sigv4.js";

export interface Credential extends SigningCredential {
  /** IAM-style principal ARN the requests are made as. */
  readonly principal: string;
}

const principalArn = /^arn:aws:(iam|sts)::\d{12}:[\w+=,.@/:-]+$/;

const credentialsFileSchema = z.object({
  credentials: z
    .array(
      z.object({
        accessKeyId: z
          .string()
          .regex(
            /^[A-Z0-9]{16,128}$/,
            "access key ids are 16 to 128 upper-case letters and digits",
          ),
        secretAccessKey: z.string().min(16, "use a secret of at least 16 characters"),
        principal: z
          .string()
          .regex(
            principalArn,
            "a principal is an ARN such as arn:aws:iam::000000000000:user/admin",
          ),
      }),
    )
    .min(1),
});

export class CredentialsFileError extends Error {
  override name = "CredentialsFileError";
}

/** Reads and validates a credentials file; errors name the file and the field to fix. */
export function loadCredentialsFile(path: string): Map<string, Credential> {
  let document: unknown;
  try {
    document = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CredentialsFileError(
      `cannot read credentials file ${path}: ${(err as Error).message}`,
    );
  }
  const result = credentialsFileSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new CredentialsFileError(
      `credentials file ${path}: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const byId = new Map<string, Credential>();
  for (const c of result.data.credentials) {
    if (byId.has(c.accessKeyId))
      throw new CredentialsFileError(
        `credentials file ${path}: access key ${c.accessKeyId} appears twice`,
      );
    byId.set(c.accessKeyId, Object.freeze({ ...c }));
  }
  return byId;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A fresh access key id in AWS's shape (AKIA + 16 characters). */
export function newAccessKeyId(prefix = "AKIA"): string {
  const bytes = randomBytes(16);
  let id = prefix;
  for (const b of bytes) id += ALPHABET[b & 31];
  return id;
}

export const newSecretAccessKey = (): string => randomBytes(30).toString("base64");

/**
 * Writes a new credentials file with one admin credential, readable by the owner only.
 * Fails if the file exists (never overwrites someone's credentials).
 */
export function createAdminCredentialsFile(path: string, account: string): Credential {
  const credential: Credential = {
    accessKeyId: newAccessKeyId(),
    secretAccessKey: newSecretAccessKey(),
    principal: `arn:aws:iam::${account}:user/admin`,
  };
  const fd = openSync(path, "wx", 0o600);
  try {
    writeSync(fd, stringify({ credentials: [credential] }));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return credential;
}
