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
  // What the logger's redaction censors besides (observability/logger.ts REDACTED_FIELDS):
  // the audit line is written without that pass, so its parameters must not hold them.
  "authorization",
  "material",
  "privatekey",
]);

/** Whether `name` (any case) is a member the audit record never copies. */
const isSecretMember = (name: string): boolean => SECRET_MEMBERS.has(name.toLowerCase());

const DATA_OPERATIONS = new Set([
  "Encrypt",
  "Decrypt",
  "ReEncrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateRandom",
  "Sign",
  "Verify",
  "GenerateMac",
  "VerifyMac",
  "DeriveSharedSecret",
]);

/** Operations whose responses CloudTrail leaves out (data operations and reads). */
function isDataOrRead(eventName: string): boolean {
  return (
    DATA_OPERATIONS.has(eventName) ||
    eventName.startsWith("Describe") ||
    eventName.startsWith("List") ||
    eventName.startsWith("Get")
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
  // A plain object (V8 keeps it in fast mode, which JSON.stringify serialises quickly); a
  // member named "__proto__" is defined as an own member and recorded like any other.
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (isSecretMember(k)) continue;
    if (budget.left <= 0) {
      out["[truncated]"] = `${keys.length - i} more members`;
      break;
    }
    const c = clean(value[k], depth + 1, budget);
    if (c === undefined) continue;
    const n = name(k);
    if (n === "__proto__")
      Object.defineProperty(out, n, { value: c, enumerable: true, writable: true });
    else out[n] = c;
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

/** What one request's handler knows of its event. */
export interface AuditEventInput {
  readonly requestId: string;
  readonly eventTime: Date;
  /** kms-xks-proxy: a request to Keyhaven's XKS proxy (kms/xks/proxy.ts). */
  readonly eventSource: "kms.amazonaws.com" | "sts.amazonaws.com" | "kms-xks-proxy";
  readonly eventName: string;
  readonly userIdentity: UserIdentity;
  readonly requestParameters?: unknown;
  readonly responseElements?: unknown;
  readonly resources: readonly string[];
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

/**
 * What the server adds to every event: the event's own id, the Region and account that
 * served it, and where it came from. A separate argument rather than merged into the event:
 * in Node 20's V8 an object literal that starts with a spread and adds members costs
 * microseconds (docs/benchmarks.md).
 */
export interface AuditServed {
  readonly eventId: string;
  readonly region: string;
  readonly account: string;
  readonly sourceIp: string;
  readonly userAgent?: string | undefined;
}

/** "2026-12-02T17:36:14Z": CloudTrail's eventTime, to the second. */
function eventTimeOf(date: Date): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second !== lastSecond.at) {
    const iso = date.toISOString();
    lastSecond.at = second;
    lastSecond.text = iso.length === 24 ? `${iso.slice(0, 19)}Z` : iso;
  }
  return lastSecond.text;
}
/** The last eventTime made: every request of the same second has the same one. */
const lastSecond = { at: NaN, text: "" };

/** The caller's IPv4 address as CloudTrail shows it (without the IPv4-mapped IPv6 prefix). */
function sourceAddress(ip: string): string {
  return ip.startsWith("::ffff:") ? ip.replace(/^::ffff:(?=\d+\.)/, "") : ip;
}

/** JSON texts of recently serialised user identities (the server keeps one object per credential). */
const identityTexts = new WeakMap<UserIdentity, string>();

function identityText(identity: UserIdentity): string {
  let text = identityTexts.get(identity);
  if (text === undefined) {
    text = JSON.stringify(identity);
    identityTexts.set(identity, text);
  }
  return text;
}

/** JSON texts of the resources of recently used ARNs (most requests name one of a few keys). */
const resourceTexts = new Map<string, string>();

function resourceText(arn: string, account: string): string {
  let text = resourceTexts.get(arn);
  if (text === undefined) {
    const owner = arn.split(":")[4];
    text = JSON.stringify({
      accountId: owner ?? account,
      type: arn.includes(":role/") ? "AWS::IAM::Role" : "AWS::KMS::Key",
      ARN: arn,
    });
    // Only an ARN's own account is remembered, never the serving one it falls back on.
    if (owner === undefined) return text;
    if (resourceTexts.size >= 1024) resourceTexts.clear();
    resourceTexts.set(arn, text);
  }
  return text;
}

const json = JSON.stringify;

/**
 * The audit record's members as JSON text, without the braces (`"eventVersion":"1.08",…`),
 * for the logger to frame as a line (observability/logger.ts `formatJson`). Built as text:
 * one per request, on the hot path, where building the record as objects and serialising
 * them cost twice as much. Every string but the time and the event source (a fixed set) is
 * escaped with JSON.stringify; `requestParameters` and `responseElements` are `sanitize`d,
 * so the line holds nothing the logger's redaction would censor.
 */
export function auditRecordText(e: AuditEventInput, served: AuditServed): string {
  const dataOrRead = isDataOrRead(e.eventName);
  let text = `"eventVersion":"1.08","userIdentity":${identityText(e.userIdentity)},"eventTime":"${eventTimeOf(e.eventTime)}","eventSource":"${e.eventSource}","eventName":${json(e.eventName)},"awsRegion":${json(served.region)},"sourceIPAddress":${json(sourceAddress(served.sourceIp))},"userAgent":${json(served.userAgent ?? "")}`;
  if (e.errorCode !== undefined) text += `,"errorCode":${json(e.errorCode)}`;
  if (e.errorMessage !== undefined) text += `,"errorMessage":${json(e.errorMessage)}`;
  const responseElements =
    e.errorCode !== undefined || dataOrRead ? null : sanitize(e.responseElements);
  text += `,"requestParameters":${json(sanitize(e.requestParameters))},"responseElements":${json(responseElements)},"requestID":${json(e.requestId)},"eventID":${json(served.eventId)},"readOnly":${dataOrRead},"resources":[`;
  for (let i = 0; i < e.resources.length; i++)
    text += (i === 0 ? "" : ",") + resourceText(e.resources[i]!, served.account);
  return `${text}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":${json(served.account)},"eventCategory":"Management"`;
}
