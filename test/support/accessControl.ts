/**
 * Helpers for access-control and web-identity tests:
 *
 * - `startWithPrincipals(spec)` runs startKeyService() in this process with a credentials
 *   file holding one credential per named principal (with its `policies` and `tags`), an
 *   optional `serviceAccounts` section and optional web identity (JWKS file + issuer);
 *   logs and audit records are captured by output().
 * - `TokenIssuer` plays the cluster's ServiceAccount token issuer: an RSA key, its JWKS
 *   file, and `token(claims)` for signed JWTs.
 */
import { createSign, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Clock } from "../../src/time.js";
import { ADMINISTRATOR_POLICY } from "../../src/kms/authz/keyPolicy.js";
import { loadConfig, type ServeConfig } from "../../src/config/config.js";
import type { RunningKeyService } from "../../src/cmd/serve.js";
import { startCapturing, tempDir, type TestCredential } from "./server.js";

/** The administrator's caller policy (kms:* on every resource), for `policies: [ADMINISTRATOR]`. */
export const ADMINISTRATOR = JSON.parse(ADMINISTRATOR_POLICY) as Record<string, unknown>;

export interface PrincipalSpec {
  readonly principal: string;
  /** IAM policy documents; omitted = none, so the credential is allowed nothing (fail closed). */
  readonly policies?: readonly unknown[];
  readonly tags?: Readonly<Record<string, string>>;
}

export interface AccessControlSpec {
  readonly principals: Readonly<Record<string, PrincipalSpec>>;
  readonly serviceAccounts?: readonly unknown[];
  readonly webIdentity?: { readonly jwksFile: string; readonly issuer: string };
  readonly clock?: Clock;
  readonly args?: readonly string[];
}

export interface AccessControlServer {
  readonly url: string;
  readonly region: string;
  readonly account: string;
  readonly dataDir: string;
  readonly running: RunningKeyService;
  /** Credentials by the names given in the spec. */
  readonly as: Readonly<Record<string, TestCredential>>;
  /** A ServerHandle-like view for one principal (for kmsClient, runCli, runBoto3). */
  handle(name: string): {
    url: string;
    region: string;
    credentials: TestCredential;
  };
  output(): string;
  stop(): Promise<void>;
}

export async function startWithPrincipals(spec: AccessControlSpec): Promise<AccessControlServer> {
  const dataDir = tempDir("keyhaven-authz-");
  const as: Record<string, TestCredential> = {};
  const entries = Object.entries(spec.principals).map(([name, p]) => {
    const credential: TestCredential = {
      accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      principal: p.principal,
    };
    as[name] = credential;
    return {
      ...credential,
      ...(p.policies && { policies: p.policies }),
      ...(p.tags && { tags: p.tags }),
    };
  });
  const credentialsFile = join(dataDir, "credentials-authz.yaml");
  writeFileSync(
    credentialsFile,
    stringify({
      credentials: entries,
      ...(spec.serviceAccounts && { serviceAccounts: spec.serviceAccounts }),
    }),
    { mode: 0o600 },
  );
  const config = loadConfig(
    [
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--credentials",
      credentialsFile,
      ...(spec.webIdentity
        ? [
            "--web-identity-jwks",
            spec.webIdentity.jwksFile,
            "--web-identity-issuer",
            spec.webIdentity.issuer,
          ]
        : []),
      ...(spec.args ?? []),
    ],
    {},
  ) as ServeConfig;
  const { running, output } = await startCapturing(config, spec.clock);
  return {
    url: running.url,
    region: config.region,
    account: config.account,
    dataDir,
    running,
    as,
    handle: (name) => ({ url: running.url, region: config.region, credentials: as[name]! }),
    output,
    stop: () => running.stop(),
  };
}

/** Audit records (CloudTrail-shaped JSON lines) from captured output. */
export function auditRecords(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l["msg"] === "kms request" || l["msg"] === "sts request");
}

export class TokenIssuer {
  readonly issuer = "https://kubernetes.default.svc.cluster.local";
  readonly kid = randomBytes(8).toString("hex");
  readonly jwksFile: string;
  readonly #privateKey: KeyObject;

  constructor(dir = tempDir("keyhaven-jwks-")) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.#privateKey = privateKey;
    this.jwksFile = join(dir, "jwks.json");
    const jwk = publicKey.export({ format: "jwk" });
    writeFileSync(
      this.jwksFile,
      JSON.stringify({ keys: [{ ...jwk, kid: this.kid, use: "sig", alg: "RS256" }] }),
    );
  }

  /** A ServiceAccount token as the API server projects it (audience keyhaven, 1 hour). */
  serviceAccountToken(
    namespace: string,
    name: string,
    overrides: Record<string, unknown> = {},
    now = new Date(),
  ): string {
    const iat = Math.floor(now.getTime() / 1000);
    return this.sign({
      aud: ["keyhaven"],
      exp: iat + 3600,
      iat,
      nbf: iat,
      iss: this.issuer,
      sub: `system:serviceaccount:${namespace}:${name}`,
      "kubernetes.io": {
        namespace,
        serviceaccount: { name, uid: "5f1b7b5e-0000-4000-8000-000000000001" },
        pod: { name: `${name}-7d9f8c6b5-abcde`, uid: "5f1b7b5e-0000-4000-8000-000000000002" },
      },
      ...overrides,
    });
  }

  sign(claims: Record<string, unknown>, key: KeyObject = this.#privateKey): string {
    const header = Buffer.from(JSON.stringify({ alg: "RS256", kid: this.kid })).toString(
      "base64url",
    );
    const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
    const signature = createSign("sha256").update(`${header}.${payload}`).sign(key, "base64url");
    return `${header}.${payload}.${signature}`;
  }
}

/** POSTs an STS query-protocol form to `url` (unsigned, as AssumeRoleWithWebIdentity is). */
export async function stsPost(
  url: string,
  params: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams({ Version: "2011-06-15", ...params }).toString(),
  });
  return { status: res.status, text: await res.text() };
}

/** The text of the first <Name>…</Name> element of an XML document. */
export const xmlText = (xml: string, name: string): string | undefined =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
