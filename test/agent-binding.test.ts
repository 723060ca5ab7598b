/**
 * Data keys and `keyhaven:` env values bound to the workload (issue 12 item 10): the agent
 * asks for and decrypts them under the encryption context {keyhaven:namespace,
 * keyhaven:serviceaccount}, and a key policy that ties the context to the caller's
 * ServiceAccount session keeps a second workload of the same namespace, which can read the
 * first one's data-key Secret, from decrypting it — through the agent or by forging the
 * context. The `keyhaven agent` program runs as a child process with a ServiceAccount
 * token, as in a pod; the env value is encrypted with the AWS CLI command docs/injection.md
 * gives.
 */
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMINISTRATOR,
  startWithPrincipals,
  TokenIssuer,
  type AccessControlServer,
} from "./support/accessControl.js";
import { runCli } from "./support/clients.js";
import { kmsClient, MAIN_JS, tempDir } from "./support/server.js";

const ACCOUNT = "000000000000";
const WORKLOAD_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"];
let server: AccessControlServer;
let admin: KMSClient;
let issuer: TokenIssuer;
let keyId: string;
/** The data-key store both workloads can read (as both can read Secrets in their namespace). */
const store = tempDir("keyhaven-secrets-");

beforeAll(async () => {
  issuer = new TokenIssuer();
  const allowAll = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: WORKLOAD_ACTIONS, Resource: "*" }],
  };
  server = await startWithPrincipals({
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    serviceAccounts: [
      { namespace: "shop", name: "web", policies: [allowAll] },
      { namespace: "shop", name: "worker", policies: [allowAll] },
    ],
    webIdentity: { jwksFile: issuer.jwksFile, issuer: issuer.issuer },
  });
  admin = kmsClient(server.handle("admin"));
  // The key policy docs/injection.md recommends: workloads use the key only under their own context.
  const policy = {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/admin` },
        Action: "kms:*",
        Resource: "*",
      },
      {
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: WORKLOAD_ACTIONS,
        Resource: "*",
        Condition: {
          StringEquals: {
            "kms:EncryptionContext:keyhaven:namespace": "${aws:PrincipalTag/kubernetes-namespace}",
            "kms:EncryptionContext:keyhaven:serviceaccount":
              "${aws:PrincipalTag/kubernetes-service-account}",
          },
        },
      },
    ],
  };
  const key = await admin.send(
    new CreateKeyCommand({ Description: "shop data keys", Policy: JSON.stringify(policy) }),
  );
  keyId = key.KeyMetadata!.KeyId!;
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
});

/** Runs `keyhaven agent` with only what a pod of `serviceAccount` in namespace shop has. */
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
    KEYHAVEN_AGENT_DATA_KEY_STORE: store,
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

/** `aws kms encrypt` exactly as docs/injection.md shows it, as the admin. */
async function encryptForWorkload(plaintext: string, serviceAccount: string): Promise<string> {
  const file = join(tempDir(), "plaintext");
  writeFileSync(file, plaintext);
  const { stdout } = await runCli(server.handle("admin"), [
    "kms",
    "encrypt",
    "--key-id",
    keyId,
    "--plaintext",
    `fileb://${file}`,
    "--encryption-context",
    `keyhaven:namespace=shop,keyhaven:serviceaccount=${serviceAccount}`,
    "--query",
    "CiphertextBlob",
  ]);
  return JSON.parse(stdout) as string;
}

const dataKey = (secretName: string) => ({ keyId, secretName });

describe("data keys bound to the workload", () => {
  it("the workload gets its data key and its env value, both under its own context", async () => {
    const ciphertext = await encryptForWorkload("hunter2", "web");
    const web = await runAgent("web", {
      dataKey: dataKey("keyhaven-dk-web"),
      env: [{ container: "app", name: "DB_PASSWORD", ciphertext }],
      workload: { namespace: "shop", serviceAccount: "web" },
    });
    expect(web.stderr).not.toMatch(/failed/);
    expect(web.code).toBe(0);
    expect(readFileSync(join(web.dir, "env", "app", "DB_PASSWORD"), "utf8")).toBe("hunter2");
    // The stored ciphertext decrypts only under web's context.
    const blob = readFileSync(join(web.dir, "data-key.ciphertext"));
    const check = await admin.send(
      new DecryptCommand({
        CiphertextBlob: blob,
        EncryptionContext: { "keyhaven:namespace": "shop", "keyhaven:serviceaccount": "web" },
      }),
    );
    expect(Buffer.from(check.Plaintext!)).toEqual(readFileSync(join(web.dir, "data-key")));
    await expect(admin.send(new DecryptCommand({ CiphertextBlob: blob }))).rejects.toMatchObject({
      name: "InvalidCiphertextException",
    });
  });

  it("a second ServiceAccount in the namespace cannot use the first one's data-key Secret", async () => {
    const first = await runAgent("web", {
      dataKey: dataKey("keyhaven-dk-shared"),
      env: [],
      workload: { namespace: "shop", serviceAccount: "web" },
    });
    expect(first.code).toBe(0);

    // Its own agent decrypts under its own context: the ciphertext is web's, so no.
    const own = await runAgent("worker", {
      dataKey: dataKey("keyhaven-dk-shared"),
      env: [],
      workload: { namespace: "shop", serviceAccount: "worker" },
    });
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/Decrypt of the data key in .* failed: InvalidCiphertextException/);

    // Forging web's context: the key policy ties the context to the caller's session.
    const forged = await runAgent("worker", {
      dataKey: dataKey("keyhaven-dk-shared"),
      env: [],
      workload: { namespace: "shop", serviceAccount: "web" },
    });
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(
      /Decrypt of the data key in .* failed: AccessDeniedException: .*assumed-role\/shop\/worker/,
    );

    // And without any context (an agent that does not bind): refused as well.
    const unbound = await runAgent("worker", { dataKey: dataKey("keyhaven-dk-shared"), env: [] });
    expect(unbound.code).toBe(1);
    expect(unbound.stderr).toMatch(/failed: AccessDeniedException/);
  });

  it("a `keyhaven:` env value encrypted for another ServiceAccount, or without context, is refused", async () => {
    const unbound = await admin.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("no context") }),
    );
    for (const ciphertext of [
      await encryptForWorkload("for web only", "web"),
      Buffer.from(unbound.CiphertextBlob!).toString("base64"),
    ]) {
      const worker = await runAgent("worker", {
        env: [{ container: "app", name: "TOKEN", ciphertext }],
        workload: { namespace: "shop", serviceAccount: "worker" },
      });
      expect(worker.code).toBe(1);
      expect(worker.stderr).toMatch(
        /Decrypt of env TOKEN \(container app\) failed: InvalidCiphertextException/,
      );
    }
  });
});
