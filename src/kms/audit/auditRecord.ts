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

function clean(value: unknown, depth: number): unknown {
  if (value === null || value === undefined) return undefined;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => clean(v, depth + 1));
  if (typeof value === "object") {
    if (depth > 6) return "[nested]";
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (SECRET_MEMBERS.has(k.toLowerCase())) continue;
      const c = clean(v, depth + 1);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }
  return value;
}

/** Top-level member names in CloudTrail's lower camel case; nested maps (e.g. encryption context) kept as sent. */
export function sanitize(params: unknown): Record<string, unknown> | null {
  if (typeof params !== "object" || params === null) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    if (SECRET_MEMBERS.has(k.toLowerCase())) continue;
    const c = clean(v, 1);
    if (c !== undefined) out[k.charAt(0).toLowerCase() + k.slice(1)] = c;
  }
  return out;
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
  readonly eventSource: "kms.amazonaws.com" | "sts.amazonaws.com";
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
