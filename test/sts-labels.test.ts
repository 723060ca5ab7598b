/**
 * Web-identity sessions carry their ServiceAccount's labels as principal tags when the
 * key service runs with `--web-identity-labels cluster`: the real client-node reads the
 * ServiceAccount from a loopback fake of the API server, and a key policy decides on
 * aws:PrincipalTag/<label>. Anything the lookup cannot answer fails closed.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMINISTRATOR,
  startWithPrincipals,
  stsPost,
  TokenIssuer,
  xmlText,
  type AccessControlServer,
} from "./support/accessControl.js";
import { kmsClient, tempDir } from "./support/server.js";

const ACCOUNT = "000000000000";
const ROLE = (ns: string, name: string) => `arn:aws:iam::${ACCOUNT}:role/${ns}/${name}`;

/** ServiceAccounts the fake API server knows, by namespace/name, with their labels. */
const serviceAccounts = new Map<string, Record<string, string>>([
  ["payments/api", { team: "payments", tier: "web" }],
  ["payments/batch", { team: "reporting" }],
]);
let apiUp = true;
let apiReads = 0;
let api: Server;
let issuer: TokenIssuer;
let server: AccessControlServer;
let keyArn: string;

beforeAll(async () => {
  api = createServer((req, res) => {
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/?]+)$/.exec(req.url ?? "");
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!apiUp) return send(503, { kind: "Status", status: "Failure", code: 503 });
    if (req.method !== "GET" || !m)
      return send(404, { kind: "Status", status: "Failure", code: 404 });
    apiReads++;
    const labels = serviceAccounts.get(`${m[1]}/${m[2]}`);
    if (!labels)
      return send(404, { kind: "Status", status: "Failure", reason: "NotFound", code: 404 });
    send(200, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: m[2], namespace: m[1], labels },
    });
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  const kubeconfig = join(tempDir("keyhaven-kubeconfig-"), "config");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "fake",
          cluster: {
            server: `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
            // client-node speaks plain HTTP only with this set; the fake is on loopback.
            "insecure-skip-tls-verify": true,
          },
        },
      ],
      users: [{ name: "keyhaven", user: { token: "test" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "keyhaven" } }],
      "current-context": "fake",
    }),
  );
  issuer = new TokenIssuer();
  server = await startWithPrincipals({
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    webIdentity: { jwksFile: issuer.jwksFile, issuer: issuer.issuer },
    args: ["--web-identity-labels", "cluster", "--kubeconfig", kubeconfig],
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
              Sid: "ServiceAccounts of the payments team may describe the key",
              Effect: "Allow",
              Principal: { AWS: [ROLE("payments", "api"), ROLE("payments", "batch")] },
              Action: "kms:DescribeKey",
              Resource: "*",
              Condition: { StringEquals: { "aws:PrincipalTag/team": "payments" } },
            },
          ],
        }),
      }),
    )
  ).KeyMetadata!.Arn!;
  admin.destroy();
});

afterAll(async () => {
  await server?.stop();
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
});

async function assumeRole(ns: string, name: string) {
  return stsPost(server.url, {
    Action: "AssumeRoleWithWebIdentity",
    RoleArn: ROLE(ns, name),
    RoleSessionName: `${name}-session`,
    WebIdentityToken: issuer.serviceAccountToken(ns, name),
  });
}

function sessionClient(xml: string): KMSClient {
  return new KMSClient({
    endpoint: server.url,
    region: server.region,
    credentials: {
      accessKeyId: xmlText(xml, "AccessKeyId")!,
      secretAccessKey: xmlText(xml, "SecretAccessKey")!,
      sessionToken: xmlText(xml, "SessionToken")!,
    },
  });
}

describe("ServiceAccount labels as principal tags", () => {
  it("a session gets its ServiceAccount's labels: aws:PrincipalTag/team decides", async () => {
    const allowed = await assumeRole("payments", "api");
    expect(allowed.status).toBe(200);
    const kms = sessionClient(allowed.text);
    const described = await kms.send(new DescribeKeyCommand({ KeyId: keyArn }));
    expect(described.KeyMetadata?.Arn).toBe(keyArn);
    kms.destroy();

    const other = await assumeRole("payments", "batch");
    expect(other.status).toBe(200);
    const denied = sessionClient(other.text);
    await expect(denied.send(new DescribeKeyCommand({ KeyId: keyArn }))).rejects.toMatchObject({
      name: "AccessDeniedException",
    });
    denied.destroy();
  });

  it("labels are cached briefly rather than read on every AssumeRoleWithWebIdentity", async () => {
    const before = apiReads;
    expect((await assumeRole("payments", "api")).status).toBe(200);
    expect(apiReads).toBe(before);
  });

  it("a token of a ServiceAccount that no longer exists gets no session", async () => {
    const res = await assumeRole("payments", "deleted");
    expect(res.status).toBe(400);
    expect(xmlText(res.text, "Code")).toBe("InvalidIdentityToken");
    expect(xmlText(res.text, "Message")).toContain(
      "ServiceAccount payments/deleted does not exist",
    );
  });

  it("an unreachable API server fails closed with IDPCommunicationError", async () => {
    apiUp = false;
    try {
      const res = await assumeRole("payments", "new-one");
      expect(res.status).toBe(400);
      expect(xmlText(res.text, "Code")).toBe("IDPCommunicationError");
      expect(res.text).not.toContain("<SessionToken>");
    } finally {
      apiUp = true;
    }
  });
});
