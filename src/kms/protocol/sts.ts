/**
 * The STS side of the listener: AWS query protocol (`POST /`, Content-Type
 * application/x-www-form-urlencoded, `Action=...&Version=2011-06-15`), answered
 * with STS's XML documents. Two actions:
 *
 * - AssumeRoleWithWebIdentity (unsigned, as in AWS): see identity/webIdentity.ts.
 * - GetCallerIdentity (signed for service `sts`): who the credentials are.
 *
 * Errors are STS's `<ErrorResponse>` with Type Sender and AWS's codes.
 */
import type { Credential } from "../identity/credentialsFile.js";
import type { AssumeRoleResult } from "../identity/webIdentity.js";

export const STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/";
export const STS_CONTENT_TYPE = "text/xml";

const escapeXml = (s: string) =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!,
  );

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export function assumeRoleWithWebIdentityXml(result: AssumeRoleResult, requestId: string): string {
  const c = result.credential;
  const role = c.session.roleArn.slice(c.session.roleArn.indexOf(":role/") + 6);
  return `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${escapeXml(result.subject)}</SubjectFromWebIdentityToken>
    <Audience>${escapeXml(result.audience)}</Audience>
    <AssumedRoleUser>
      <Arn>${escapeXml(c.principal)}</Arn>
      <AssumedRoleId>${escapeXml(`${role}:${c.session.sessionName}`)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${c.sessionToken}</SessionToken>
      <SecretAccessKey>${escapeXml(c.secretAccessKey)}</SecretAccessKey>
      <Expiration>${isoSeconds(c.expiration)}</Expiration>
      <AccessKeyId>${c.accessKeyId}</AccessKeyId>
    </Credentials>
    <Provider>${escapeXml(result.provider)}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`;
}

export function getCallerIdentityXml(credential: Credential, requestId: string): string {
  const account = credential.principal.split(":")[4] ?? "";
  return `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}">
  <GetCallerIdentityResult>
    <Arn>${escapeXml(credential.principal)}</Arn>
    <UserId>${escapeXml(credential.accessKeyId)}</UserId>
    <Account>${account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`;
}

export function stsErrorXml(code: string, message: string, requestId: string): string {
  return `<ErrorResponse xmlns="${STS_NAMESPACE}">
  <Error>
    <Type>Sender</Type>
    <Code>${escapeXml(code)}</Code>
    <Message>${escapeXml(message)}</Message>
  </Error>
  <RequestId>${requestId}</RequestId>
</ErrorResponse>
`;
}

/** The audit view of an AssumeRoleWithWebIdentity request: everything but the token. */
export function assumeRoleRequestParameters(params: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["RoleArn", "RoleSessionName", "DurationSeconds", "ProviderId"]) {
    const v = params.get(k);
    if (v !== null) out[k] = k === "DurationSeconds" ? Number(v) : v;
  }
  return out;
}

/** The audit view of the response (CloudTrail's camel case): no secret access key, no session token. */
export function assumeRoleResponseElements(result: AssumeRoleResult): Record<string, unknown> {
  const c = result.credential;
  const role = c.session.roleArn.slice(c.session.roleArn.indexOf(":role/") + 6);
  return {
    credentials: { accessKeyId: c.accessKeyId, expiration: isoSeconds(c.expiration) },
    assumedRoleUser: { arn: c.principal, assumedRoleId: `${role}:${c.session.sessionName}` },
    subjectFromWebIdentityToken: result.subject,
    provider: result.provider,
    audience: result.audience,
  };
}
