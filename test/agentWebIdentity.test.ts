/**
 * The `keyhaven agent` program (a child process, as in the pod) against the real key
 * service on loopback, with nothing but what the webhook injects: a ServiceAccount-style
 * JWT signed by a test JWKS in AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, the STS and KMS
 * endpoints and the region. The SDK exchanges the token through STS by itself.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMINISTRATOR,
  startWithPrincipals,
  TokenIssuer,
  type AccessControlServer,
} from "./support/accessControl.js";
import { kmsClient, MAIN_JS, tempDir } from "./support/server.js";

const ACCOUNT = "000000000000";
let server: AccessControlServer;
let admin: KMSClient;
let issuer: TokenIssuer;
let ciphertext: string;

beforeAll(async () => {
  issuer = new TokenIssuer();
  server = await startWithPrincipals({
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    serviceAccounts: [
      {
        namespace: "shop",
        name: "web",
        policies: [
          {
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: "*" },
            ],
          },
        ],
      },
      { namespace: "shop", name: "intruder", policies: [] },
    ],
    webIdentity: { jwksFile: issuer.jwksFile, issuer: issuer.issuer },
  });
  admin = kmsClient(server.handle("admin"));
  const key = await admin.send(new CreateKeyCommand({ Description: "web data keys" }));
  await admin.send(
    new CreateAliasCommand({ AliasName: "alias/shop/web", TargetKeyId: key.KeyMetadata!.KeyId! }),
  );
  const enc = await admin.send(
    new EncryptCommand({ KeyId: "alias/shop/web", Plaintext: Buffer.from("hunter2") }),
  );
  ciphertext = Buffer.from(enc.CiphertextBlob!).toString("base64");
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
});

/** Runs `keyhaven agent` with only the environment a pod would have. */
function runAgent(serviceAccount: string, plan: object) {
  const work = tempDir("keyhaven-pod-");
  const tokenFile = join(work, "token");
  writeFileSync(tokenFile, issuer.serviceAccountToken("shop", serviceAccount));
  const dir = join(work, "out");
  const env = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: work,
    AWS_ROLE_ARN: `arn:aws:iam::${ACCOUNT}:role/shop/${serviceAccount}`,
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ENDPOINT_URL_KMS: server.url,
    AWS_ENDPOINT_URL_STS: server.url,
    AWS_REGION: server.region,
    KEYHAVEN_AGENT_PLAN: JSON.stringify(plan),
    KEYHAVEN_AGENT_DIR: dir,
    KEYHAVEN_AGENT_DATA_KEY_STORE: join(work, "store"),
    KEYHAVEN_AGENT_TIMEOUT: "10",
  };
  return new Promise<{ code: number | null; stderr: string; dir: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_JS, "agent"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stderr, dir }));
  });
}

describe("keyhaven agent with a ServiceAccount token (STS web identity)", () => {
  it("exchanges the token, writes the data key and the decrypted env value with mode 0400", async () => {
    const { code, stderr, dir } = await runAgent("web", {
      dataKey: { keyId: "alias/shop/web", secretName: "keyhaven-dk-web" },
      env: [{ container: "app", name: "DB_PASSWORD", ciphertext }],
    });
    expect(stderr).not.toMatch(/failed/);
    expect(code).toBe(0);
    const plaintext = readFileSync(join(dir, "data-key"));
    const check = await admin.send(
      new DecryptCommand({ CiphertextBlob: readFileSync(join(dir, "data-key.ciphertext")) }),
    );
    expect(Buffer.from(check.Plaintext!)).toEqual(plaintext);
    expect(readFileSync(join(dir, "env", "app", "DB_PASSWORD"), "utf8")).toBe("hunter2");
    for (const f of ["data-key", "data-key.ciphertext", "env/app/DB_PASSWORD", "env/app.env"])
      expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o400);
    // The audit trail shows the ServiceAccount's session did it.
    expect(server.output()).toContain(`assumed-role/shop/web`);
    expect(stderr).not.toContain("hunter2");
  });

  it("a ServiceAccount without rights fails at once with AWS's AccessDeniedException text and a non-zero exit", async () => {
    const { code, stderr } = await runAgent("intruder", {
      dataKey: { keyId: "alias/shop/web", secretName: "keyhaven-dk-web" },
      env: [],
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /keyhaven agent: GenerateDataKey with key alias\/shop\/web failed: AccessDeniedException: .*assumed-role\/shop\/intruder.*kms:GenerateDataKey/,
    );
  });
});
