/**
 * The audit event of one request, shaped like an AWS CloudTrail record:
 *
 *   { eventVersion, userIdentity, eventTime, eventSource, eventName, awsRegion,
 *     sourceIPAddress, userAgent, requestParameters, responseElements, errorCode?,
 *     errorMessage?, requestID, eventID, readOnly, resources, eventType,
 *     managementEvent, recipientAccountId, eventCategory }
 *
 * requestParameters and responseElements never carry secrets: binary members
 * (plaintext, ciphertext, data keys, key material, signatures, MACs, import tokens)
 * are dropped, and so are the named secret strings (grant tokens, secret access
 * keys, session tokens, web identity tokens, passwords). Data operations record no
 * responseElements, as CloudTrail does.
 */
import { createHash } from "node:crypto";
import type { Principal } from "../authz/principal.js";

const SECRET_MEMBERS = new Set([
  "plaintext",
  "privatekeyplaintext",
  "sharedsecret",
  "granttoken",
  "granttokens",
  "secretaccesskey",
  "sessiontoken",
  "webidentitytoken",
  "password",
  "keystorepassword",
  "xksproxyauthenticationcredential",
  "importtoken",
  "encryptedkeymaterial",
  "ciphertextblob",
  "ciphertextforrecipient",
  "message",
  "signature",
  "mac",
]);

/** Operations whose responses CloudTrail leaves out (data operations and reads). */
function isDataOrRead(eventName: string): boolean {
  return (
    /^(Describe|List|Get)/.test(eventName) ||
    /^(Encrypt|Decrypt|ReEncrypt|GenerateDataKey|GenerateDataKeyWithoutPlaintext|GenerateDataKeyPair|GenerateDataKeyPairWithoutPlaintext|GenerateRandom|Sign|Verify|GenerateMac|VerifyMac|DeriveSharedSecret)$/.test(
      eventName,
    )
  );
}

/** Longest string (value or map key) copied into a record; longer ones are replaced by a marker. */
export const MAX_AUDIT_STRING = 2048;
/** Characters of strings copied into one record's parameters; members past it are left out. */
export const MAX_AUDIT_PARAMETERS = 16 * 1024;

/** What stands for a string too long to copy: its length and SHA-256, so it can still be matched. */
function truncatedMarker(value: string): string {
  const sha256 = createHash("sha256").update(value).digest("hex");
  return `[truncated: ${value.length} characters, sha256:${sha256}]`;
}

interface Budget {
  left: number;
}

function bounded(text: string, budget: Budget): string {
  const kept = text.length > MAX_AUDIT_STRING ? truncatedMarker(text) : text;
  budget.left -= kept.length;
  return kept;
}

function clean(value: unknown, depth: number, budget: Budget): unknown {
  if (value === null || value === undefined) return undefined;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "string") return bounded(value, budget);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) {
      if (budget.left <= 0) {
        out.push(`[truncated: ${value.length - out.length} more items]`);
        break;
      }
      out.push(clean(v, depth + 1, budget));
    }
    return out;
  }
  if (typeof value === "object") {
    if (depth > 6) return "[nested]";
    return cleanMembers(value as Record<string, unknown>, depth, budget, (k) => bounded(k, budget));
  }
  return value;
}

/**
 * Copies the non-secret members, within the budget: once it is spent, the rest are
 * counted under a "[truncated]" member instead of copied (a record stays small
 * whatever the request carried, e.g. a 280 KB encryption context).
 */
function cleanMembers(
  value: Record<string, unknown>,
  depth: number,
  budget: Budget,
  name: (key: string) => string,
): Record<string, unknown> {
  // Null prototype: a member named "__proto__" is recorded like any other.
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const entries = Object.entries(value);
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i]!;
    if (SECRET_MEMBERS.has(k.toLowerCase())) continue;
    if (budget.left <= 0) {
      out["[truncated]"] = `${entries.length - i} more members`;
      break;
    }
    const c = clean(v, depth + 1, budget);
    if (c !== undefined) out[name(k)] = c;
  }
  return out;
}

/**
 * Top-level member names in CloudTrail's lower camel case; nested maps (e.g. encryption
 * context) kept as sent, within MAX_AUDIT_STRING and MAX_AUDIT_PARAMETERS.
 */
export function sanitize(params: unknown): Record<string, unknown> | null {
  if (typeof params !== "object" || params === null) return null;
  return cleanMembers(
    params as Record<string, unknown>,
    0,
    { left: MAX_AUDIT_PARAMETERS },
    (k) => k.charAt(0).toLowerCase() + k.slice(1),
  );
}

export interface SessionInfo {
  readonly roleArn: string;
  readonly sessionName: string;
  readonly issuedAt: number;
  readonly provider: string;
}

export interface AuditCaller {
  readonly principal: Principal;
  readonly accessKeyId: string;
  readonly session?: SessionInfo;
}

export type UserIdentity = Record<string, unknown>;

export function userIdentity(caller: AuditCaller | undefined, accessKeyId?: string): UserIdentity {
  if (!caller) return { type: "Unknown", ...(accessKeyId !== undefined && { accessKeyId }) };
  const p = caller.principal;
  const base = { arn: p.arn, accountId: p.account, accessKeyId: caller.accessKeyId };
  switch (p.type) {
    case "Root":
      return { type: "Root", principalId: p.account, ...base };
    case "AssumedRole": {
      const roleArn = caller.session?.roleArn ?? p.roleArn ?? p.arn;
      const roleName = roleArn.slice(roleArn.indexOf(":role/") + 6);
      const sessionName = caller.session?.sessionName ?? "";
      return {
        type: "AssumedRole",
        principalId: `${roleName}:${sessionName}`,
        ...base,
        sessionContext: {
          sessionIssuer: {
            type: "Role",
            principalId: roleName,
            arn: roleArn,
            accountId: p.account,
            userName: roleName,
          },
          ...(caller.session && {
            webIdFederationData: { federatedProvider: caller.session.provider, attributes: {} },
            attributes: {
              creationDate: new Date(caller.session.issuedAt).toISOString(),
              mfaAuthenticated: "false",
            },
          }),
        },
      };
    }
    default:
      return {
        type: p.type === "Role" ? "AssumedRole" : "IAMUser",
        principalId: caller.accessKeyId,
        ...base,
        userName: p.arn.slice(p.arn.lastIndexOf("/") + 1),
      };
  }
}

export interface AuditEventInput {
  readonly requestId: string;
  readonly eventId: string;
  readonly eventTime: Date;
  /** kms-xks-proxy: a request to Keyhaven's XKS proxy (kms/xks/proxy.ts). */
  readonly eventSource: "kms.amazonaws.com" | "sts.amazonaws.com" | "kms-xks-proxy";
  readonly eventName: string;
  readonly region: string;
  readonly account: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
  readonly userIdentity: UserIdentity;
  readonly requestParameters?: unknown;
  readonly responseElements?: unknown;
  readonly resources: readonly string[];
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

export function auditRecord(e: AuditEventInput): Record<string, unknown> {
  const dataOrRead = isDataOrRead(e.eventName);
  return {
    eventVersion: "1.08",
    userIdentity: e.userIdentity,
    eventTime: e.eventTime.toISOString().replace(/\.\d{3}Z$/, "Z"),
    eventSource: e.eventSource,
    eventName: e.eventName,
    awsRegion: e.region,
    sourceIPAddress: e.sourceIp.replace(/^::ffff:(?=\d+\.)/, ""),
    userAgent: e.userAgent ?? "",
    ...(e.errorCode !== undefined && { errorCode: e.errorCode }),
    ...(e.errorMessage !== undefined && { errorMessage: e.errorMessage }),
    requestParameters: sanitize(e.requestParameters),
    responseElements: e.errorCode !== undefined || dataOrRead ? null : sanitize(e.responseElements),
    requestID: e.requestId,
    eventID: e.eventId,
    readOnly: dataOrRead,
    resources: e.resources.map((arn) => ({
      accountId: arn.split(":")[4] ?? e.account,
      type: arn.includes(":role/") ? "AWS::IAM::Role" : "AWS::KMS::Key",
      ARN: arn,
    })),
    eventType: "AwsApiCall",
    managementEvent: true,
    recipientAccountId: e.account,
    eventCategory: "Management",
  };
}
