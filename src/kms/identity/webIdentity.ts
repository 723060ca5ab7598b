/**
 * STS AssumeRoleWithWebIdentity for Kubernetes ServiceAccounts: a projected
 * ServiceAccount token (a JWT from the cluster's issuer, audience `keyhaven` by
 * default) is exchanged for temporary credentials, exactly what the AWS SDKs do by
 * themselves when AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set.
 *
 * The ServiceAccount <ns>/<name> is the role `arn:aws:iam::<account>:role/<ns>/<name>`
 * (the RoleArn the pod must ask for) and its sessions are the principal
 * `arn:aws:sts::<account>:assumed-role/<ns>/<name>`, tagged with
 * kubernetes-namespace, kubernetes-service-account, kubernetes-pod-name,
 * kubernetes-pod-uid and the ServiceAccount's labels (aws:PrincipalTag/<key>).
 * Credentials expire after DurationSeconds (default and maximum: one hour, or the
 * configured maximum), never later than the token itself.
 */
import { principalFromArn, type Principal } from "../authz/principal.js";
import type { Credential, ServiceAccountEntry } from "./credentialsFile.js";
import { TokenError, verifyToken, type JwksKey } from "./jwt.js";
import { openSession, sealSession, type SessionPayload } from "./sessionCredentials.js";

export class StsError extends Error {
  override name = "StsError";
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A temporary credential, with what the audit record says about its session. */
export interface SessionCredential extends Credential {
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly identity: Principal;
  readonly session: SessionPayload;
}

export interface WebIdentityOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: () => readonly JwksKey[];
  /** Fetches the keys again (a token names a key the set does not hold yet). */
  readonly refreshKeys?: () => Promise<void>;
  readonly account: string;
  /** 32 bytes that seal session tokens; shared by every replica. */
  readonly sessionKey: Buffer;
  /** Longest session, in seconds (default 3600). */
  readonly maxSessionSeconds?: number;
  readonly serviceAccounts: readonly ServiceAccountEntry[];
  /** Labels of a ServiceAccount (from the cluster), when known. */
  readonly labels?: (
    namespace: string,
    name: string,
  ) => Promise<Readonly<Record<string, string>> | undefined>;
  readonly random: (bytes: number) => Buffer;
}

export interface AssumeRoleResult {
  readonly credential: SessionCredential;
  readonly audience: string;
  readonly provider: string;
  readonly subject: string;
}

const SA_SUBJECT = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([^:]+)$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export const serviceAccountRoleArn = (account: string, namespace: string, name: string) =>
  `arn:aws:iam::${account}:role/${namespace}/${name}`;
export const serviceAccountSessionArn = (account: string, namespace: string, name: string) =>
  `arn:aws:sts::${account}:assumed-role/${namespace}/${name}`;

const validation = (message: string) => new StsError("ValidationError", message);

export class WebIdentityProvider {
  readonly #o: WebIdentityOptions;
  readonly #cache = new Map<string, SessionCredential>();

  constructor(options: WebIdentityOptions) {
    this.#o = options;
  }

  async assumeRole(params: URLSearchParams, now: Date): Promise<AssumeRoleResult> {
    const o = this.#o;
    const roleArn = params.get("RoleArn");
    const sessionName = params.get("RoleSessionName");
    const token = params.get("WebIdentityToken");
    const missing = [
      ["roleArn", roleArn],
      ["roleSessionName", sessionName],
      ["webIdentityToken", token],
    ].filter(([, v]) => v === null || v === "");
    if (missing.length > 0)
      throw validation(
        `${missing.length} validation error${missing.length > 1 ? "s" : ""} detected: ${missing
          .map(
            ([n]) => `Value null at '${n}' failed to satisfy constraint: Member must not be null`,
          )
          .join("; ")}`,
      );
    if (!SESSION_NAME.test(sessionName!))
      throw validation(
        `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64`,
      );
    if (params.has("Policy") || [...params.keys()].some((k) => k.startsWith("PolicyArns")))
      throw validation(
        "Session policies (Policy, PolicyArns) are not supported by Keyhaven; attach caller policies to the ServiceAccount in the credentials file instead.",
      );
    const max = o.maxSessionSeconds ?? 3600;
    let duration = max;
    const durationParam = params.get("DurationSeconds");
    if (durationParam !== null) {
      duration = Number(durationParam);
      if (!Number.isInteger(duration) || duration < 900)
        throw validation(
          `1 validation error detected: Value '${durationParam}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`,
        );
      if (duration > max)
        throw validation(
          `The requested DurationSeconds exceeds the MaxSessionDuration set for this role (${max} seconds).`,
        );
    }

    let claims;
    const verify = () =>
      verifyToken(token!, { keys: o.keys(), issuer: o.issuer, audience: o.audience, now });
    try {
      try {
        claims = verify();
      } catch (err) {
        // The issuer may have rotated its keys since they were fetched.
        if (!(err instanceof TokenError && err.message.startsWith("No key")) || !o.refreshKeys)
          throw err;
        await o.refreshKeys();
        claims = verify();
      }
    } catch (err) {
      if (err instanceof TokenError)
        throw new StsError(err.code, err.message, err.code === "IDPRejectedClaim" ? 403 : 400);
      throw err;
    }
    const sa = SA_SUBJECT.exec(claims.sub);
    if (!sa)
      throw new StsError(
        "InvalidIdentityToken",
        `The token's subject '${claims.sub}' is not a Kubernetes ServiceAccount (system:serviceaccount:<namespace>:<name>).`,
      );
    const namespace = sa[1]!;
    const name = sa[3]!;
    const expectedRole = serviceAccountRoleArn(o.account, namespace, name);
    if (roleArn !== expectedRole)
      throw new StsError(
        "AccessDenied",
        `Not authorized to perform sts:AssumeRoleWithWebIdentity: ServiceAccount ${namespace}/${name} may assume only ${expectedRole}.`,
        403,
      );

    const k8s = (claims["kubernetes.io"] ?? {}) as {
      pod?: { name?: unknown; uid?: unknown };
    };
    const labels = (await o.labels?.(namespace, name)) ?? {};
    const configured = o.serviceAccounts.filter(
      (e) => e.namespace === namespace && (e.name === name || e.name === "*"),
    );
    const tags: Record<string, string> = { ...labels };
    for (const e of configured) Object.assign(tags, e.tags);
    tags["kubernetes-namespace"] = namespace;
    tags["kubernetes-service-account"] = name;
    if (typeof k8s.pod?.name === "string") tags["kubernetes-pod-name"] = k8s.pod.name;
    if (typeof k8s.pod?.uid === "string") tags["kubernetes-pod-uid"] = k8s.pod.uid;

    const issuedAt = now.getTime();
    const expiresAt = Math.min(issuedAt + duration * 1000, claims.exp * 1000);
    let accessKeyId = "ASIA";
    for (const b of o.random(16)) accessKeyId += BASE32[b & 31];
    const payload: SessionPayload = {
      accessKeyId,
      secretAccessKey: o.random(30).toString("base64"),
      principal: serviceAccountSessionArn(o.account, namespace, name),
      roleArn: expectedRole,
      sessionName: sessionName!,
      namespace,
      serviceAccount: name,
      tags,
      expiresAt,
      issuedAt,
      provider: claims.iss,
      subject: claims.sub,
    };
    const sessionToken = sealSession(o.sessionKey, payload, o.random(12));
    const credential = this.#credential(payload, sessionToken);
    return { credential, audience: o.audience, provider: claims.iss, subject: claims.sub };
  }

  #credential(payload: SessionPayload, sessionToken: string): SessionCredential {
    const policies = this.#o.serviceAccounts
      .filter(
        (e) =>
          e.namespace === payload.namespace &&
          (e.name === payload.serviceAccount || e.name === "*"),
      )
      .flatMap((e) => e.policies);
    return Object.freeze({
      accessKeyId: payload.accessKeyId,
      secretAccessKey: payload.secretAccessKey,
      sessionToken,
      expiration: new Date(payload.expiresAt),
      principal: payload.principal,
      identity: principalFromArn(payload.principal, {
        roleArn: payload.roleArn,
        tags: payload.tags,
        policies,
      }),
      session: payload,
    });
  }

  /** The temporary credential of an access key id and session token, if this service issued it. */
  lookup(accessKeyId: string, sessionToken: string | undefined): SessionCredential | undefined {
    if (sessionToken === undefined || !accessKeyId.startsWith("ASIA")) return undefined;
    let credential = this.#cache.get(sessionToken);
    if (!credential) {
      const payload = openSession(this.#o.sessionKey, sessionToken);
      if (!payload || payload.accessKeyId !== accessKeyId) return undefined;
      credential = this.#credential(payload, sessionToken);
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(sessionToken, credential);
    }
    return credential.accessKeyId === accessKeyId ? credential : undefined;
  }
}
