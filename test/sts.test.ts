/**
 * Workload identity: STS AssumeRoleWithWebIdentity on the key service's listener.
 * The headline test runs an UNMODIFIED AWS SDK program in a child process whose whole
 * environment is AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL_KMS and AWS_REGION — what the webhook gives a pod.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  KMSClient,
  KMSServiceException,
  type KMSClient as Client,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  auditRecords,
  ADMINISTRATOR,
  startWithPrincipals,
  stsPost,
  TokenIssuer,
  xmlText,
  type AccessControlServer,
} from "./support/accessControl.js";
import { runSdkProgram } from "./support/clients.js";
import { kmsClient, selfSignedCertificate, tempDir } from "./support/server.js";
import { jwksFromUrl } from "../src/kms/identity/jwksUrl.js";
import { ManualClock } from "./support/manualClock.js";

const ACCOUNT = "000000000000";
const ROLE = (ns: string, name: string) => `arn:aws:iam::${ACCOUNT}:role/${ns}/${name}`;

/** A clock the tests move by hand. */
const clock = new ManualClock(Date.now());

let issuer: TokenIssuer;
let server: AccessControlServer;
let admin: Client;
let keyArn: string;

beforeAll(async () => {
  issuer = new TokenIssuer();
  server = await startWithPrincipals({
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    webIdentity: { jwksFile: issuer.jwksFile, issuer: issuer.issuer },
    clock,
    serviceAccounts: [
      {
        namespace: "payments",
        name: "*",
        tags: { team: "payments" },
        policies: [
          {
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Action: "kms:DescribeKey",
                Resource: "*",
                Condition: { StringEquals: { "aws:PrincipalTag/team": "payments" } },
              },
            ],
          },
        ],
      },
    ],
  });
  admin = kmsClient(server.handle("admin"));
  // The key policy names the ServiceAccount's role directly (no caller policy needed).
  keyArn = (
    await admin.send(
      new CreateKeyCommand({
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "Enable IAM policies",
              Effect: "Allow",
              Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
              Action: "kms:*",
              Resource: "*",
            },
            {
              Sid: "The payments API may encrypt and decrypt its records",
              Effect: "Allow",
              Principal: { AWS: ROLE("payments", "api") },
              Action: ["kms:Encrypt", "kms:Decrypt"],
              Resource: "*",
              Condition: {
                StringEquals: {
                  "kms:EncryptionContext:service": "payments",
                  "aws:PrincipalTag/kubernetes-namespace": "payments",
                },
              },
            },
          ],
        }),
      }),
    )
  ).KeyMetadata!.Arn!;
  await admin.send(new CreateAliasCommand({ AliasName: "alias/payments", TargetKeyId: keyArn }));
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
});

describe("AssumeRoleWithWebIdentity", () => {
  it("an unmodified SDK process with only the AWS_* web-identity environment calls KMS", async () => {
    const dir = tempDir("keyhaven-sa-");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, issuer.serviceAccountToken("payments", "api", {}, clock.now()));
    const program = `
      import { KMSClient, EncryptCommand, DecryptCommand } from "@aws-sdk/client-kms";
      const kms = new KMSClient({});
      const ctx = { service: "payments" };
      const enc = await kms.send(new EncryptCommand({ KeyId: "alias/payments", Plaintext: Buffer.from("card 4111"), EncryptionContext: ctx }));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }));
      let denied = "none";
      try { await kms.send(new EncryptCommand({ KeyId: "alias/payments", Plaintext: Buffer.from("x"), EncryptionContext: { service: "other" } })); }
      catch (e) { denied = e.name + ": " + e.message; }
      const creds = await kms.config.credentials();
      console.log(JSON.stringify({ keyId: enc.KeyId, plaintext: Buffer.from(dec.Plaintext).toString(), denied, accessKeyId: creds.accessKeyId, expiration: creds.expiration }));
    `;
    const env = {
      AWS_ROLE_ARN: ROLE("payments", "api"),
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ENDPOINT_URL_STS: server.url,
      AWS_ENDPOINT_URL_KMS: server.url,
      AWS_REGION: server.region,
    };
    const r = await runSdkProgram(env, program);
    expect(r.stderr.replace(/\(node:\d+\)[\s\S]*?(\n\n|$)/g, "")).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, string>;
    expect(out["keyId"]).toBe(keyArn);
    expect(out["plaintext"]).toBe("card 4111");
    expect(out["accessKeyId"]).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(out["denied"]).toBe(
      `AccessDeniedException: User: arn:aws:sts::${ACCOUNT}:assumed-role/payments/api is not authorized to perform: kms:Encrypt on resource: ${keyArn} because no identity-based policy allows the kms:Encrypt action`,
    );
    const expiresIn = new Date(out["expiration"]!).getTime() - clock.now().getTime();
    expect(expiresIn).toBeGreaterThan(3590_000);
    expect(expiresIn).toBeLessThanOrEqual(3600_000);

    // The audit shows the STS exchange and the KMS calls as the assumed role, no secrets.
    const records = auditRecords(server.output());
    const sts = records.filter((r) => r["eventName"] === "AssumeRoleWithWebIdentity");
    expect(sts.length).toBeGreaterThanOrEqual(1);
    expect(sts[0]).toMatchObject({
      eventSource: "sts.amazonaws.com",
      userIdentity: { type: "WebIdentityUser", identityProvider: issuer.issuer },
      requestParameters: { roleArn: ROLE("payments", "api") },
      responseElements: { credentials: { accessKeyId: out["accessKeyId"] } },
    });
    const kms = records.find(
      (r) =>
        r["eventName"] === "Decrypt" &&
        (r["userIdentity"] as { accessKeyId?: string }).accessKeyId === out["accessKeyId"],
    );
    expect(kms).toMatchObject({
      userIdentity: {
        type: "AssumedRole",
        arn: `arn:aws:sts::${ACCOUNT}:assumed-role/payments/api`,
        sessionContext: {
          sessionIssuer: { type: "Role", arn: ROLE("payments", "api") },
          webIdFederationData: { federatedProvider: issuer.issuer },
        },
      },
    });
    const token = issuer.serviceAccountToken("payments", "api", {}, clock.now());
    const output = server.output();
    expect(output).not.toContain(token.split(".")[2]);
    expect(output).not.toContain("card 4111");
    expect(output).not.toMatch(/SessionToken"?:\s*"[A-Za-z0-9_-]{40,}/);
    expect(output).not.toMatch(/sessionToken/i);
  });

  it("boto3 and the AWS CLI take the same web-identity environment", async () => {
    const dir = tempDir("keyhaven-sa-py-");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, issuer.serviceAccountToken("payments", "api", {}, clock.now()));
    const env = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: dir,
      AWS_ROLE_ARN: ROLE("payments", "api"),
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ENDPOINT_URL_STS: server.url,
      AWS_ENDPOINT_URL_KMS: server.url,
      AWS_DEFAULT_REGION: server.region,
    };
    const script = [
      "import json, boto3",
      "kms = boto3.client('kms')",
      "ctx = {'service': 'payments'}",
      "enc = kms.encrypt(KeyId='alias/payments', Plaintext=b'from python', EncryptionContext=ctx)",
      "dec = kms.decrypt(CiphertextBlob=enc['CiphertextBlob'], EncryptionContext=ctx)",
      "who = boto3.client('sts').get_caller_identity()",
      "print(json.dumps({'plaintext': dec['Plaintext'].decode(), 'arn': who['Arn']}))",
    ].join("\n");
    const py = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile("python3", ["-c", script], { env, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    expect(py.stderr).toBe("");
    expect(JSON.parse(py.stdout)).toEqual({
      plaintext: "from python",
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/payments/api`,
    });
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        "aws",
        ["sts", "get-caller-identity", "--output", "json"],
        { env: { ...env, AWS_PAGER: "" }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    expect(cli.stderr).toBe("");
    expect(JSON.parse(cli.stdout)).toMatchObject({
      Account: ACCOUNT,
      Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/payments/api`,
    });
  });

  it("returns STS's XML; credentials last at most as long as the token", async () => {
    const now = clock.now();
    const token = issuer.serviceAccountToken(
      "payments",
      "worker",
      { exp: Math.floor(now.getTime() / 1000) + 1200 },
      now,
    );
    const r = await stsPost(server.url, {
      Action: "AssumeRoleWithWebIdentity",
      RoleArn: ROLE("payments", "worker"),
      RoleSessionName: "worker-session",
      WebIdentityToken: token,
    });
    expect(r.status).toBe(200);
    expect(r.text).toMatch(
      /^<AssumeRoleWithWebIdentityResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">/,
    );
    expect(xmlText(r.text, "SubjectFromWebIdentityToken")).toBe(
      "system:serviceaccount:payments:worker",
    );
    expect(xmlText(r.text, "Audience")).toBe("keyhaven");
    expect(xmlText(r.text, "Provider")).toBe(issuer.issuer);
    expect(xmlText(r.text, "Arn")).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/payments/worker`);
    expect(xmlText(r.text, "AssumedRoleId")).toBe("payments/worker:worker-session");
    const expiration = new Date(xmlText(r.text, "Expiration")!).getTime();
    expect(expiration).toBe(Math.floor(now.getTime() / 1000) * 1000 + 1200_000);

    // The temporary credentials work with the plain SDK client, carry the configured
    // caller policy and principal tags, and stop at expiry.
    const client = new KMSClient({
      endpoint: server.url,
      region: server.region,
      maxAttempts: 1,
      credentials: {
        accessKeyId: xmlText(r.text, "AccessKeyId")!,
        secretAccessKey: xmlText(r.text, "SecretAccessKey")!,
        sessionToken: xmlText(r.text, "SessionToken")!,
      },
    });
    const { DescribeKeyCommand } = await import("@aws-sdk/client-kms");
    // The serviceAccounts entry (payments/*) allows DescribeKey when tagged team=payments.
    await client.send(new DescribeKeyCommand({ KeyId: keyArn }));
    const tampered = new KMSClient({
      endpoint: server.url,
      region: server.region,
      maxAttempts: 1,
      credentials: {
        accessKeyId: xmlText(r.text, "AccessKeyId")!,
        secretAccessKey: xmlText(r.text, "SecretAccessKey")!,
        sessionToken: `${xmlText(r.text, "SessionToken")!.slice(0, -4)}AAAA`,
      },
    });
    await expect(tampered.send(new DescribeKeyCommand({ KeyId: keyArn }))).rejects.toMatchObject({
      name: "UnrecognizedClientException",
    });
    clock.advance(1201_000);
    // The SDK signs with its own clock: shift it with the server's fake one.
    const later = new KMSClient({
      endpoint: server.url,
      region: server.region,
      maxAttempts: 1,
      systemClockOffset: clock.now().getTime() - Date.now(),
      credentials: {
        accessKeyId: xmlText(r.text, "AccessKeyId")!,
        secretAccessKey: xmlText(r.text, "SecretAccessKey")!,
        sessionToken: xmlText(r.text, "SessionToken")!,
      },
    });
    try {
      await later.send(new DescribeKeyCommand({ KeyId: keyArn }));
      throw new Error("expired credentials were accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(KMSServiceException);
      expect((err as KMSServiceException).name).toBe("ExpiredTokenException");
    }
    client.destroy();
    tampered.destroy();
    later.destroy();
    // Neither the secret nor the session token reached the logs or the audit records.
    const output = server.output();
    expect(output).not.toContain(xmlText(r.text, "SessionToken")!);
    expect(output).not.toContain(xmlText(r.text, "SecretAccessKey")!);
    expect(output).not.toContain(token);
  });

  it("refuses bad tokens with STS's error codes", async () => {
    const now = clock.now();
    const sec = Math.floor(now.getTime() / 1000);
    const cases: [string, Record<string, string>, number, string, RegExp][] = [
      [
        "wrong audience",
        {
          WebIdentityToken: issuer.serviceAccountToken(
            "payments",
            "api",
            { aud: ["sts.amazonaws.com"] },
            now,
          ),
        },
        400,
        "InvalidIdentityToken",
        /Incorrect token audience/,
      ],
      [
        "expired",
        {
          WebIdentityToken: issuer.serviceAccountToken(
            "payments",
            "api",
            { exp: sec - 10, iat: sec - 3610, nbf: sec - 3610 },
            now,
          ),
        },
        400,
        "ExpiredTokenException",
        /Token expired/,
      ],
      [
        "another issuer",
        {
          WebIdentityToken: issuer.serviceAccountToken(
            "payments",
            "api",
            { iss: "https://evil.example" },
            now,
          ),
        },
        400,
        "InvalidIdentityToken",
        /No OpenIDConnect provider/,
      ],
      [
        "signed by another key",
        { WebIdentityToken: new TokenIssuer().serviceAccountToken("payments", "api", {}, now) },
        400,
        "InvalidIdentityToken",
        /signature|No key/,
      ],
      [
        "role of another ServiceAccount",
        { RoleArn: ROLE("payments", "admin") },
        403,
        "AccessDenied",
        /may assume only arn:aws:iam::000000000000:role\/payments\/api/,
      ],
      [
        "too long a session",
        { DurationSeconds: "7200" },
        400,
        "ValidationError",
        /MaxSessionDuration/,
      ],
      ["not a JWT", { WebIdentityToken: "hello" }, 400, "InvalidIdentityToken", /not a JWT/],
    ];
    for (const [name, override, status, code, message] of cases) {
      const fixed = await stsPost(server.url, {
        Action: "AssumeRoleWithWebIdentity",
        RoleArn: ROLE("payments", "api"),
        RoleSessionName: "session-1",
        WebIdentityToken: issuer.serviceAccountToken("payments", "api", {}, now),
        ...override,
      });
      expect({ name, status: fixed.status, code: xmlText(fixed.text, "Code") }).toEqual({
        name,
        status,
        code,
      });
      expect(xmlText(fixed.text, "Message")).toMatch(message);
      expect(fixed.text).toMatch(
        /^<ErrorResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">/,
      );
      expect(xmlText(fixed.text, "Type")).toBe("Sender");
    }
    const short = await stsPost(server.url, {
      Action: "AssumeRoleWithWebIdentity",
      RoleArn: ROLE("payments", "api"),
      RoleSessionName: "s",
      WebIdentityToken: issuer.serviceAccountToken("payments", "api", {}, now),
    });
    expect(xmlText(short.text, "Code")).toBe("ValidationError");
    const unknown = await stsPost(server.url, { Action: "AssumeRole" });
    expect(xmlText(unknown.text, "Code")).toBe("InvalidAction");
  });
});

describe("JWKS from an https URL (the API server's /openid/v1/jwks)", () => {
  it("is fetched with the CA and bearer token, refreshed, and taken by --web-identity-jwks", async () => {
    const dir = tempDir("keyhaven-jwks-https-");
    selfSignedCertificate(dir);
    writeFileSync(join(dir, "token"), "reader-token\n");
    const first = new TokenIssuer();
    const second = new TokenIssuer();
    let served = readFileSync(first.jwksFile, "utf8");
    const seen: (string | undefined)[] = [];
    const https = createServer(
      { cert: readFileSync(join(dir, "cert.pem")), key: readFileSync(join(dir, "key.pem")) },
      (req, res) => {
        seen.push(req.headers.authorization);
        if (req.headers.authorization !== "Bearer reader-token") return res.writeHead(401).end();
        // As kube-apiserver: only application/jwk-set+json (or */*) is acceptable.
        const accept = (req.headers.accept ?? "*/*").split(",").map((t) => t.split(";")[0]!.trim());
        if (!accept.some((t) => t === "application/jwk-set+json" || t === "*/*"))
          return res
            .writeHead(406, { "content-type": "text/plain" })
            .end("406: Not Acceptable\nAvailable representations: application/jwk-set+json");
        res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(served);
      },
    );
    await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}/openid/v1/jwks`;
    const source = await jwksFromUrl(url, {
      caFile: join(dir, "cert.pem"),
      tokenFile: join(dir, "token"),
      minRefreshMs: 0,
    });
    expect(source.keys().map((k) => k.kid)).toEqual([first.kid]);
    served = readFileSync(second.jwksFile, "utf8");
    await source.refresh();
    expect(source.keys().map((k) => k.kid)).toEqual([second.kid]);
    expect(seen.every((h) => h === "Bearer reader-token")).toBe(true);
    // Without the CA the server's certificate is refused at start.
    await expect(jwksFromUrl(url, { tokenFile: join(dir, "token") })).rejects.toThrow();
    source.close();

    // The key service takes the URL for --web-identity-jwks.
    served = readFileSync(first.jwksFile, "utf8");
    const s = await startWithPrincipals({
      principals: {
        admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
      },
      webIdentity: { jwksFile: url, issuer: first.issuer },
      args: [
        "--web-identity-jwks-ca",
        join(dir, "cert.pem"),
        "--web-identity-jwks-token",
        join(dir, "token"),
      ],
    });
    try {
      const ok = await stsPost(s.url, {
        Action: "AssumeRoleWithWebIdentity",
        RoleArn: ROLE("ns", "sa"),
        RoleSessionName: "s1",
        WebIdentityToken: first.serviceAccountToken("ns", "sa"),
      });
      expect(ok.status).toBe(200);
    } finally {
      await s.stop();
      https.close();
    }
  });
});
