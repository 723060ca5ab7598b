/**
 * Web identity with real ServiceAccount tokens (kubeUp.ts): the key service verifies
 * TokenRequest tokens against the API server's own JWKS (`--web-identity-jwks
 * https://…/openid/v1/jwks`, its CA, the key service's own ServiceAccount token as the
 * bearer) and issuer; an unmodified AWS SDK child process with only the AWS_* variables
 * the webhook injects exchanges the token through STS and calls KMS;
 * `--web-identity-labels cluster` reads the real ServiceAccounts' labels, and a key
 * policy's Deny on aws:PrincipalTag/team decides from a real label.
 */
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMINISTRATOR,
  auditRecords,
  stsPost,
  xmlText,
  type AccessControlServer,
} from "./support/accessControl.js";
import { runSdkProgram } from "./support/clients.js";
import {
  createServiceAccount,
  requestToken,
  startClusterKeyService,
  CLUSTER_TIMEOUT_MS,
} from "./support/clusterWebhook.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, tempDir } from "./support/server.js";

const ACCOUNT = "000000000000";
const ROLE = (ns: string, name: string) => `arn:aws:iam::${ACCOUNT}:role/${ns}/${name}`;

let plane: ControlPlane;
let server: AccessControlServer;
let keyArn: string;

beforeAll(async () => {
  plane = await startControlPlane();
  const ns = await createNamespace(plane, "payments");
  await createServiceAccount(plane, ns, "api", { team: "payments" });
  await createServiceAccount(plane, ns, "batch", { team: "reporting" });
  server = await startClusterKeyService(plane, {
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    args: ["--web-identity-labels", "cluster", "--kubeconfig", plane.kubeconfig],
  });
  const admin = kmsClient(server.handle("admin"));
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
              Sid: "The payments ServiceAccounts may encrypt and decrypt",
              Effect: "Allow",
              Principal: { AWS: [ROLE("payments", "api"), ROLE("payments", "batch")] },
              Action: ["kms:Encrypt", "kms:Decrypt"],
              Resource: "*",
            },
            {
              Sid: "Never the reporting team (a ServiceAccount label)",
              Effect: "Deny",
              Principal: { AWS: "*" },
              Action: "kms:*",
              Resource: "*",
              Condition: { StringEquals: { "aws:PrincipalTag/team": "reporting" } },
            },
          ],
        }),
      }),
    )
  ).KeyMetadata!.Arn!;
  await admin.send(new CreateAliasCommand({ AliasName: "alias/payments", TargetKeyId: keyArn }));
  admin.destroy();
}, CLUSTER_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  await plane?.stop();
});

/** An unmodified SDK program with only the AWS_* environment the webhook gives a pod. */
async function sdkInPod(serviceAccount: string) {
  const tokenFile = join(tempDir("keyhaven-pod-token-"), "token");
  writeFileSync(
    tokenFile,
    await requestToken(plane, "payments", serviceAccount, { audiences: ["keyhaven"] }),
  );
  const r = await runSdkProgram(
    {
      AWS_ROLE_ARN: ROLE("payments", serviceAccount),
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ENDPOINT_URL_KMS: server.url,
      AWS_ENDPOINT_URL_STS: server.url,
      AWS_REGION: server.region,
    },
    `
      import { KMSClient, EncryptCommand, DecryptCommand } from "@aws-sdk/client-kms";
      const kms = new KMSClient({ maxAttempts: 1 });
      try {
        const enc = await kms.send(new EncryptCommand({ KeyId: "alias/payments", Plaintext: Buffer.from("card 4111") }));
        const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
        const creds = await kms.config.credentials();
        console.log(JSON.stringify({ keyId: enc.KeyId, plaintext: Buffer.from(dec.Plaintext).toString(), accessKeyId: creds.accessKeyId }));
      } catch (e) {
        console.log(JSON.stringify({ error: e.name + ": " + e.message }));
      }
    `,
  );
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, string>;
}

describe(
  "web identity with the API server's tokens and JWKS",
  { timeout: CLUSTER_TIMEOUT_MS },
  () => {
    it("an SDK with only the injected AWS_* variables exchanges a TokenRequest token and calls KMS", async () => {
      const out = await sdkInPod("api");
      expect(out).toMatchObject({ keyId: keyArn, plaintext: "card 4111" });
      expect(out["accessKeyId"]).toMatch(/^ASIA[A-Z2-7]{16}$/);
      const sts = auditRecords(server.output()).find(
        (r) => r["eventName"] === "AssumeRoleWithWebIdentity",
      );
      expect(sts).toMatchObject({
        userIdentity: { type: "WebIdentityUser", identityProvider: plane.issuer },
        requestParameters: { roleArn: ROLE("payments", "api") },
      });
    });

    it("the real ServiceAccount's label is a principal tag: a Deny on aws:PrincipalTag/team refuses", async () => {
      const out = await sdkInPod("batch");
      expect(out["error"]).toMatch(
        new RegExp(
          `^AccessDeniedException: User: arn:aws:sts::${ACCOUNT}:assumed-role/payments/batch is not authorized to perform: kms:Encrypt on resource: ${keyArn} with an explicit deny`,
        ),
      );
    });

    it("refuses a token for another audience and one whose ServiceAccount was deleted", async () => {
      const assume = (token: string, sa = "api") =>
        stsPost(server.url, {
          Action: "AssumeRoleWithWebIdentity",
          RoleArn: ROLE("payments", sa),
          RoleSessionName: "session",
          WebIdentityToken: token,
        });
      // The API server's own audience is not keyhaven's.
      const wrong = await assume(await requestToken(plane, "payments", "api"));
      expect(wrong.status).toBe(400);
      expect(xmlText(wrong.text, "Code")).toBe("InvalidIdentityToken");

      await createServiceAccount(plane, "payments", "gone");
      const token = await requestToken(plane, "payments", "gone", { audiences: ["keyhaven"] });
      const del = await plane.request("DELETE", "/api/v1/namespaces/payments/serviceaccounts/gone");
      expect(del.status).toBe(200);
      const res = await assume(token, "gone");
      expect(res.status).toBe(400);
      expect(xmlText(res.text, "Message")).toContain("ServiceAccount payments/gone does not exist");
      expect(res.text).not.toContain("<SessionToken>");
    });
  },
);
