/**
 * A real key service over HTTPS serving the XKS proxy at /tenant-a (in process), with an
 * XKS credential (principal XKS_PRINCIPAL, allowed kms:Encrypt, kms:Decrypt and
 * kms:DescribeKey) next to the test admin, an SDK client for the admin, and a key with the
 * alias alias/xks-demo. For the XKS proxy and client tests.
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { CreateAliasCommand, CreateKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import {
  kmsClient,
  selfSignedCertificate,
  startInProcess,
  tempDir,
  writeCredentialsFile,
  type InProcessServer,
} from "./server.js";
import { xksCredential, type XksSpecCredential } from "./xksSpecClient.js";

export const XKS_ACCOUNT = "000000000000";
export const XKS_PRINCIPAL = `arn:aws:iam::${XKS_ACCOUNT}:user/aws-kms-xks`;
export const XKS_PREFIX = "/tenant-a";
const XKS_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Action: ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], Resource: "*" },
  ],
});

export interface XksProxyFixture {
  readonly server: InProcessServer;
  /** The admin's SDK client. */
  readonly kms: KMSClient;
  readonly credential: XksSpecCredential;
  /** The proxy's self-signed certificate (PEM). */
  readonly ca: Buffer;
  readonly keyId: string;
  readonly keyArn: string;
  newKey(policy?: string): Promise<{ id: string; arn: string }>;
  stop(): Promise<void>;
}

/** A credentials-file entry (YAML, for writeCredentialsFile's `more`) of an XKS credential. */
export function xksCredentialEntry(
  credential: XksSpecCredential,
  policy: string = XKS_POLICY,
): string {
  return `  - accessKeyId: ${credential.accessKeyId}\n    secretAccessKey: "${credential.secretAccessKey}"\n    principal: ${XKS_PRINCIPAL}\n    policies:\n      - '${policy}'\n`;
}

export async function startXksProxy(): Promise<XksProxyFixture> {
  const dir = tempDir("keyhaven-xks-");
  const tls = selfSignedCertificate(dir);
  const credential = xksCredential();
  const creds = writeCredentialsFile(dir, XKS_ACCOUNT, xksCredentialEntry(credential));
  const server = await startInProcess({
    dataDir: dir,
    credentials: creds,
    args: ["--tls-cert", tls.cert, "--tls-key", tls.key, "--xks-proxy-uri-path", XKS_PREFIX],
  });
  const ca = readFileSync(tls.cert);
  const agent = new Agent({ ca });
  const kms = kmsClient(server, { httpsAgent: agent });
  async function newKey(policy?: string) {
    const created = await kms.send(new CreateKeyCommand(policy ? { Policy: policy } : {}));
    return { id: created.KeyMetadata!.KeyId!, arn: created.KeyMetadata!.Arn! };
  }
  const key = await newKey();
  await kms.send(new CreateAliasCommand({ AliasName: "alias/xks-demo", TargetKeyId: key.id }));
  return {
    server,
    kms,
    credential,
    ca,
    keyId: key.id,
    keyArn: key.arn,
    newKey,
    async stop() {
      kms.destroy();
      agent.destroy();
      await server.stop();
    },
  };
}
