/**
 * Static credentials from the credentials file (format in DESIGN.md):
 *
 *   credentials:
 *     - accessKeyId: AKIAEXAMPLE
 *       secretAccessKey: example-secret
 *       principal: arn:aws:iam::000000000000:user/admin
 *       tags: { team: payments }          # optional: aws:PrincipalTag/<key>
 *       policies: [ <IAM policy> ]        # caller policies; absent or [] = allowed nothing
 *   serviceAccounts:                      # optional: caller policies of web-identity sessions
 *     - namespace: payments
 *       name: api                         # or "*": every ServiceAccount of the namespace
 *       tags: { tier: backend }
 *       policies: [ <IAM policy> ]
 *
 * A policy is a JSON policy document, written as YAML/JSON object or as a string.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { ADMINISTRATOR_POLICY } from "../authz/keyPolicy.js";
import { compilePolicy, PolicyError, type CompiledPolicy } from "../authz/policy.js";
import { principalFromArn, type Principal } from "../authz/principal.js";
import type { SigningCredential } from "./signingCredential.js";

export interface Credential extends SigningCredential {
  /** IAM-style principal ARN the requests are made as. */
  readonly principal: string;
  /**
   * Tags and caller policies of the principal. No policies = allowed nothing, as an IAM
   * user with no policy attached (fail closed; see docs/access-control.md).
   */
  readonly identity: Principal;
}

const principalArn = /^arn:aws:(iam|sts)::\d{12}:[\w+=,.@/:-]+$/;

const policyDocument = z.union([z.string(), z.record(z.string(), z.unknown())]);
const tagMap = z.record(z.string().min(1).max(128), z.string().max(256));

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
        tags: tagMap.optional(),
        policies: z.array(policyDocument).optional(),
      }),
    )
    .min(1),
  serviceAccounts: z
    .array(
      z.object({
        namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a Kubernetes namespace"),
        name: z.string().min(1),
        tags: tagMap.optional(),
        policies: z.array(policyDocument).optional(),
      }),
    )
    .optional(),
});

/** Caller policies and tags configured for ServiceAccounts (web-identity sessions). */
export interface ServiceAccountEntry {
  readonly namespace: string;
  /** A ServiceAccount name, or "*" for all of the namespace. */
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly policies: readonly CompiledPolicy[];
}

function compilePolicies(
  path: string,
  where: string,
  docs: readonly (string | Record<string, unknown>)[],
): CompiledPolicy[] {
  return docs.map((doc, i) => {
    try {
      return compilePolicy(typeof doc === "string" ? doc : JSON.stringify(doc), "identity");
    } catch (err) {
      if (err instanceof PolicyError)
        throw new CredentialsFileError(
          `credentials file ${path}: ${where}.policies.${i}: ${err.message}`,
        );
      throw err;
    }
  });
}

export interface IdentityFile {
  readonly credentials: Map<string, Credential>;
  readonly serviceAccounts: readonly ServiceAccountEntry[];
}

export class CredentialsFileError extends Error {
  override name = "CredentialsFileError";
}

/** Principals of credentials that have no caller policy: they are allowed nothing (start-up log). */
export function principalsWithoutPolicies(credentials: ReadonlyMap<string, Credential>): string[] {
  return [...credentials.values()]
    .filter((c) => c.identity.policies.length === 0)
    .map((c) => c.principal);
}

/** Reads and validates a credentials file; errors name the file and the field to fix. */
export function loadCredentialsFile(path: string): Map<string, Credential> {
  return loadIdentityFile(path).credentials;
}

/** The credentials file with its ServiceAccount section. */
export function loadIdentityFile(path: string): IdentityFile {
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
  result.data.credentials.forEach((c, i) => {
    if (byId.has(c.accessKeyId))
      throw new CredentialsFileError(
        `credentials file ${path}: access key ${c.accessKeyId} appears twice`,
      );
    const policies = compilePolicies(path, `credentials.${i}`, c.policies ?? []);
    byId.set(
      c.accessKeyId,
      Object.freeze({
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        principal: c.principal,
        identity: principalFromArn(c.principal, { tags: c.tags ?? {}, policies }),
      }),
    );
  });
  const serviceAccounts = (result.data.serviceAccounts ?? []).map((sa, i) => ({
    namespace: sa.namespace,
    name: sa.name,
    tags: sa.tags ?? {},
    policies: compilePolicies(path, `serviceAccounts.${i}`, sa.policies ?? []),
  }));
  return { credentials: byId, serviceAccounts };
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
 * Writes a new credentials file with one admin credential, readable by the owner only,
 * its administrator policy spelled out. Fails if the file exists (never overwrites
 * someone's credentials).
 */
export function createAdminCredentialsFile(path: string, account: string): Credential {
  const principal = `arn:aws:iam::${account}:user/admin`;
  const credential: Credential = {
    accessKeyId: newAccessKeyId(),
    secretAccessKey: newSecretAccessKey(),
    principal,
    identity: principalFromArn(principal, {
      policies: [compilePolicy(ADMINISTRATOR_POLICY, "identity")],
    }),
  };
  const fd = openSync(path, "wx", 0o600);
  try {
    const entry = {
      accessKeyId: credential.accessKeyId,
      secretAccessKey: credential.secretAccessKey,
      principal,
      policies: [JSON.parse(ADMINISTRATOR_POLICY) as Record<string, unknown>],
    };
    writeSync(fd, stringify({ credentials: [entry] }));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return credential;
}
