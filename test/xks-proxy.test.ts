/**
 * Keyhaven as an XKS proxy (`serve --xks-proxy-uri-path`), checked with a client written
 * from AWS's XKS Proxy API specification (test/support/xksSpecClient.ts) against a real
 * key service over HTTPS: the four operations, the error table, SigV4 for kms-xks-proxy,
 * key policies with the request metadata as condition keys, and the audit record.
 */
import {
  DisableKeyCommand,
  EnableKeyCommand,
  ListKeysCommand,
  RotateKeyOnDemandCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  selfSignedCertificate,
  spawnServer,
  tempDir,
  writeCredentialsFile,
  type InProcessServer,
} from "./support/server.js";
import {
  startXksProxy,
  XKS_ACCOUNT as ACCOUNT,
  XKS_PREFIX,
  XKS_PRINCIPAL,
  xksCredentialEntry,
  type XksProxyFixture,
} from "./support/xksProxy.js";
import {
  expectEncryptShape,
  expectHealthShape,
  expectMetadataShape,
  expectSpecError,
  specCdiv,
  xksCredential,
  XksSpecClient,
  type DecryptBody,
  type EncryptBody,
  type RequestMetadata,
} from "./support/xksSpecClient.js";

const ALICE = "arn:aws:iam::123456789012:user/Alice";
const MALLORY = "arn:aws:iam::123456789012:user/Mallory";

let fixture: XksProxyFixture;
let server: InProcessServer;
let kms: KMSClient;
let xks: XksSpecClient;
let keyId: string;
let keyArn: string;

const meta = (
  kmsOperation: string,
  extra: { [K in keyof RequestMetadata]?: RequestMetadata[K] | undefined } = {},
): RequestMetadata =>
  JSON.parse(
    JSON.stringify({
      awsPrincipalArn: ALICE,
      kmsKeyArn: "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      kmsOperation,
      kmsRequestId: crypto.randomUUID(),
      ...extra,
    }),
  ) as RequestMetadata;

const plaintext = Buffer.from("Hello World!").toString("base64");
const aad = Buffer.from("project=nile,department=marketing").toString("base64");
const newKey = (policy?: string) => fixture.newKey(policy);

/** Decrypt's body for an Encrypt answer `o` (with the suite's AAD), with `changes` (undefined drops a member). */
const decryptBody = (
  o: Record<string, string>,
  changes: Record<string, string | undefined> = {},
): DecryptBody =>
  JSON.parse(
    JSON.stringify({
      requestMetadata: meta("Decrypt"),
      additionalAuthenticatedData: aad,
      encryptionAlgorithm: "AES_GCM",
      ciphertext: o["ciphertext"],
      ciphertextMetadata: o["ciphertextMetadata"],
      initializationVector: o["initializationVector"],
      authenticationTag: o["authenticationTag"],
      ...changes,
    }),
  ) as DecryptBody;

beforeAll(async () => {
  fixture = await startXksProxy();
  ({ server, kms, keyId, keyArn } = fixture);
  xks = new XksSpecClient(server.url, `${XKS_PREFIX}/kms/xks/v1`, fixture.credential, fixture.ca);
});

afterAll(async () => {
  await fixture?.stop();
});

describe("the four operations, as the specification shapes them", () => {
  it("GetHealthStatus answers the fleet and the key manager's health", async () => {
    const r = await xks.health({ kmsOperation: "KmsHealthCheck", kmsRequestId: "r-1" });
    expectHealthShape(r);
    expect(r.json!["xksProxyVendor"]).toBe("Keyhaven");
    expect((r.json!["ekmFleetDetails"] as { healthStatus: string }[])[0]!.healthStatus).toBe(
      "ACTIVE",
    );
  });

  it("GetKeyMetadata names a key by id or by alias name", async () => {
    for (const id of [keyId, "xks-demo"]) {
      const r = await xks.metadata(id, meta("CreateKey", { kmsKeyArn: undefined }));
      expect(expectMetadataShape(r)).toEqual({
        keySpec: "AES_256",
        keyUsage: ["ENCRYPT", "DECRYPT"],
        keyStatus: "ENABLED",
      });
    }
  });

  it("Encrypt and Decrypt round-trip with AAD, ciphertextMetadata and the CDIV", async () => {
    const sent: EncryptBody = {
      requestMetadata: meta("Encrypt", { kmsViaService: "ebs" }),
      additionalAuthenticatedData: aad,
      plaintext,
      encryptionAlgorithm: "AES_GCM",
      ciphertextDataIntegrityValueAlgorithm: "SHA_256",
    };
    const out = expectEncryptShape(await xks.encrypt("xks-demo", sent), sent);
    expect(out["ciphertextMetadata"]).toBeDefined();
    const r = await xks.decrypt(keyId, decryptBody(out));
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({ plaintext });
  });

  it("Encrypt without AAD or CDIV; ciphertext made before a rotation still decrypts", async () => {
    const sent: EncryptBody = {
      requestMetadata: meta("GenerateDataKey"),
      plaintext: Buffer.alloc(32, 7).toString("base64"),
      encryptionAlgorithm: "AES_GCM",
    };
    const out = expectEncryptShape(await xks.encrypt(keyId, sent), sent);
    expect(out["ciphertextDataIntegrityValue"]).toBeUndefined();
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const after = expectEncryptShape(await xks.encrypt(keyId, sent), sent);
    expect(after["ciphertextMetadata"]).not.toBe(out["ciphertextMetadata"]);
    for (const o of [out, after]) {
      const r = await xks.decrypt(
        keyId,
        decryptBody(o, { additionalAuthenticatedData: undefined }),
      );
      expect(r.json).toEqual({ plaintext: sent.plaintext });
    }
  });

  it("accepts requests signed for any region (AWS KMS signs with its own)", async () => {
    const r = await xks.health(
      { kmsOperation: "KmsHealthCheck", kmsRequestId: "r-2" },
      { region: "eu-west-1" },
    );
    expectHealthShape(r);
  });

  it("leaves the KMS API on the same listener as it was", async () => {
    const keys = await kms.send(new ListKeysCommand({}));
    expect(keys.Keys!.map((k) => k.KeyId)).toContain(keyId);
  });
});

describe("the error table", () => {
  async function encrypted(id = keyId) {
    const sent: EncryptBody = {
      requestMetadata: meta("Encrypt"),
      additionalAuthenticatedData: aad,
      plaintext,
      encryptionAlgorithm: "AES_GCM",
    };
    return expectEncryptShape(await xks.encrypt(id, sent), sent);
  }
  const flip = (b64: string) => {
    const b = Buffer.from(b64, "base64");
    b[0]! ^= 1;
    return b.toString("base64");
  };

  it("InvalidCiphertextException: tampered ciphertext, tag, IV or metadata; wrong or missing AAD", async () => {
    const o = await encrypted();
    const cases = [
      { ciphertext: flip(o["ciphertext"]!) },
      { authenticationTag: flip(o["authenticationTag"]!) },
      { initializationVector: flip(o["initializationVector"]!) },
      { ciphertextMetadata: flip(o["ciphertextMetadata"]!) },
      { ciphertextMetadata: undefined },
      { additionalAuthenticatedData: Buffer.from("project=amazon").toString("base64") },
      { additionalAuthenticatedData: undefined },
      // The metadata moved into the AAD: the lengths in the AAD tell them apart.
      {
        additionalAuthenticatedData: Buffer.concat([
          Buffer.from(aad, "base64"),
          Buffer.from(o["ciphertextMetadata"]!, "base64"),
        ]).toString("base64"),
        ciphertextMetadata: undefined,
      },
      { initializationVector: Buffer.alloc(8).toString("base64") },
    ];
    for (const changes of cases) {
      expectSpecError(
        await xks.decrypt(keyId, decryptBody(o, changes)),
        "InvalidCiphertextException",
      );
    }
  });

  it("KeyNotFoundException for an unknown key id or alias", async () => {
    expectSpecError(
      await xks.metadata("0c7d1e4a-0000-4000-8000-000000000000", meta("CreateKey")),
      "KeyNotFoundException",
    );
    expectSpecError(
      await xks.encrypt("no-such-alias", {
        requestMetadata: meta("Encrypt"),
        plaintext,
        encryptionAlgorithm: "AES_GCM",
      }),
      "KeyNotFoundException",
    );
  });

  it("InvalidStateException for a disabled key, whose metadata says DISABLED", async () => {
    const key = await newKey();
    const o = await encrypted(key.id);
    await kms.send(new DisableKeyCommand({ KeyId: key.id }));
    expect(expectMetadataShape(await xks.metadata(key.id, meta("DescribeKey")))).toMatchObject({
      keyStatus: "DISABLED",
    });
    expectSpecError(
      await xks.encrypt(key.id, {
        requestMetadata: meta("Encrypt"),
        plaintext,
        encryptionAlgorithm: "AES_GCM",
      }),
      "InvalidStateException",
    );
    expectSpecError(await xks.decrypt(key.id, decryptBody(o)), "InvalidStateException");
    await kms.send(new EnableKeyCommand({ KeyId: key.id }));
    expect((await xks.decrypt(key.id, decryptBody(o))).json).toEqual({ plaintext });
  });

  it("AuthenticationFailedException: wrong secret, unknown key id, unsigned, stale, a credential of non-XKS size", async () => {
    const health = { requestMetadata: { kmsOperation: "KmsHealthCheck", kmsRequestId: "r" } };
    const wrongSecret = { ...xks.credential, secretAccessKey: xksCredential().secretAccessKey };
    expectSpecError(
      await xks.call("/health", health, { credential: wrongSecret }),
      "AuthenticationFailedException",
    );
    expectSpecError(
      await xks.call("/health", health, { credential: xksCredential() }),
      "AuthenticationFailedException",
    );
    expectSpecError(
      await xks.call("/health", health, { unsigned: true }),
      "AuthenticationFailedException",
    );
    expectSpecError(
      await xks.call("/health", health, { signingDate: new Date(Date.now() - 10 * 60_000) }),
      "AuthenticationFailedException",
    );
    // The KMS admin credential (20-character id, 40-character secret) is not an XKS credential.
    expectSpecError(
      await xks.call("/health", health, { credential: server.credentials }),
      "AuthenticationFailedException",
    );
  });

  it("AccessDeniedException when the key policy denies on the request metadata", async () => {
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Effect: "Deny",
          Principal: { AWS: "*" },
          Action: "kms:Encrypt",
          Resource: "*",
          Condition: { StringEquals: { "xks:awsPrincipalArn": MALLORY } },
        },
      ],
    });
    const key = await newKey(policy);
    const body = (who: string): EncryptBody => ({
      requestMetadata: meta("Encrypt", { awsPrincipalArn: who }),
      plaintext,
      encryptionAlgorithm: "AES_GCM",
    });
    expectSpecError(await xks.encrypt(key.id, body(MALLORY)), "AccessDeniedException");
    expectEncryptShape(await xks.encrypt(key.id, body(ALICE)), body(ALICE));
  });

  it("ValidationException: not JSON, no requestMetadata, missing members, bad Base64, another algorithm", async () => {
    const path = `/keys/${keyId}/encrypt`;
    const ok = { requestMetadata: meta("Encrypt"), plaintext, encryptionAlgorithm: "AES_GCM" };
    const bad: unknown[] = [
      "{not json",
      "[]",
      { plaintext, encryptionAlgorithm: "AES_GCM" },
      { ...ok, requestMetadata: { ...meta("Encrypt"), kmsRequestId: undefined } },
      { ...ok, requestMetadata: { ...meta("Encrypt"), kmsKeyArn: undefined } },
      { ...ok, plaintext: "not base64!" },
      { ...ok, plaintext: undefined },
      { ...ok, encryptionAlgorithm: "AES_CBC" },
      { ...ok, ciphertextDataIntegrityValueAlgorithm: "MD5" },
    ];
    for (const body of bad) {
      const sent = typeof body === "string" ? body : JSON.parse(JSON.stringify(body));
      expectSpecError(await xks.call(path, sent), "ValidationException");
    }
    expectSpecError(
      await xks.call("/keys/has%2Fslash/metadata", { requestMetadata: meta("CreateKey") }),
      "ValidationException",
    );
  });

  it("unknown kmsOperation values and extra metadata members are not rejected", async () => {
    const sent = {
      requestMetadata: { ...meta("BulkEncrypt"), kmsRecipientAttestationPCR0: "x" },
      plaintext,
      encryptionAlgorithm: "AES_GCM",
    };
    expectEncryptShape(await xks.call(`/keys/${keyId}/encrypt`, sent), sent);
  });

  it("InvalidUriPathException for other paths; 405 for GET", async () => {
    const body = { requestMetadata: meta("Encrypt") };
    expectSpecError(await xks.call(`/keys/${keyId}/sign`, body), "InvalidUriPathException");
    expectSpecError(await xks.call("/nothing", body), "InvalidUriPathException");
    expectSpecError(await xks.raw("/tenant-b/kms/xks/v1/health", body), "InvalidUriPathException");
    for (const suffix of ["/health", `/keys/${keyId}/metadata`, `/keys/${keyId}/encrypt`]) {
      const r = await xks.call(suffix, "", { method: "GET" });
      expect(r.status).toBe(405);
    }
  });

  it("UnsupportedOperationException for AAD past what the 2-byte length can say", async () => {
    const sent = {
      requestMetadata: meta("Encrypt"),
      plaintext,
      additionalAuthenticatedData: Buffer.alloc(65_536).toString("base64"),
      encryptionAlgorithm: "AES_GCM",
    };
    expectSpecError(await xks.encrypt(keyId, sent), "UnsupportedOperationException");
  });
});

describe("the audit record", () => {
  it("carries the request metadata and never the plaintext, ciphertext or AAD", async () => {
    const requestId = `audit-${crypto.randomUUID()}`;
    const secret = Buffer.from("audit-me-not: 4111 1111 1111 1111").toString("base64");
    const sent: EncryptBody = {
      requestMetadata: meta("GenerateDataKey", {
        kmsRequestId: requestId,
        kmsViaService: "s3",
        kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/feedface-0000-4000-8000-000000000000",
      }),
      additionalAuthenticatedData: aad,
      plaintext: secret,
      encryptionAlgorithm: "AES_GCM",
      ciphertextDataIntegrityValueAlgorithm: "SHA_256",
    };
    const out = expectEncryptShape(await xks.encrypt("xks-demo", sent), sent);
    expect(out["ciphertextDataIntegrityValue"]).toBe(specCdiv(aad, out));
    const denied = await xks.encrypt("xks-demo", sent, { credential: xksCredential() });
    expectSpecError(denied, "AuthenticationFailedException");

    const lines = server
      .output()
      .split("\n")
      .filter((l) => l.includes(requestId))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({
      audit: true,
      eventSource: "kms-xks-proxy",
      eventName: "Encrypt",
      outcome: "success",
      userIdentity: { arn: XKS_PRINCIPAL, accessKeyId: xks.credential.accessKeyId },
      requestParameters: {
        keyId: "xks-demo",
        encryptionAlgorithm: "AES_GCM",
        requestMetadata: {
          awsPrincipalArn: ALICE,
          kmsOperation: "GenerateDataKey",
          kmsRequestId: requestId,
          kmsViaService: "s3",
          kmsKeyArn: sent.requestMetadata.kmsKeyArn,
        },
      },
      resources: [{ ARN: keyArn }],
    });
    const text = server.output();
    for (const s of [secret, aad, out["ciphertext"]!, xks.credential.secretAccessKey])
      expect(text).not.toContain(s);
    // The refused request has its own line: no caller, the error.
    expect(text).toMatch(
      /"eventSource":"kms-xks-proxy"[^\n]*"errorCode":"AuthenticationFailedException"/,
    );
  });
});

describe("keyhaven serve --xks-proxy-uri-path (the built program)", () => {
  it("answers the spec's Appendix D curl --aws-sigv4 calls over HTTPS", async () => {
    const dir = tempDir("keyhaven-xks-program-");
    const tls = selfSignedCertificate(dir);
    const credential = xksCredential();
    const creds = writeCredentialsFile(dir, ACCOUNT, xksCredentialEntry(credential));
    const program = await spawnServer({
      dataDir: dir,
      credentials: creds,
      args: ["--tls-cert", tls.cert, "--tls-key", tls.key, "--xks-proxy-uri-path", "/path"],
    });
    try {
      expect(program.output()).toMatch(/"xksProxyUriPath":"\/path\/kms\/xks\/v1"/);
      const curl = async (suffix: string, body: object) => {
        const { stdout } = await promisify(execFile)("curl", [
          "--silent",
          "--cacert",
          tls.cert,
          "--aws-sigv4",
          "aws:amz:us-east-1:kms-xks-proxy",
          "--user",
          `${credential.accessKeyId}:${credential.secretAccessKey}`,
          "-X",
          "POST",
          "-H",
          "Content-Type:application/json",
          "--data",
          JSON.stringify(body),
          "--write-out",
          "\n%{response_code}",
          `${program.url.replace("127.0.0.1", "localhost")}/path/kms/xks/v1${suffix}`,
        ]);
        const [text, code] = [
          stdout.slice(0, stdout.lastIndexOf("\n")),
          stdout.slice(stdout.lastIndexOf("\n") + 1),
        ];
        return { code: Number(code), json: JSON.parse(text) as Record<string, unknown> };
      };
      const health = await curl("/health", {
        requestMetadata: { kmsOperation: "KmsHealthCheck", kmsRequestId: "1124f4d6" },
      });
      expect(health.code).toBe(200);
      expect(health.json["ekmFleetDetails"]).toEqual([
        expect.objectContaining({ healthStatus: "ACTIVE" }),
      ]);
      const key = await curl("/keys/0c7d1e4a-0000-4000-8000-000000000000/encrypt", {
        requestMetadata: meta("GenerateDataKey"),
        plaintext,
        encryptionAlgorithm: "AES_GCM",
      });
      expect(key).toEqual({
        code: 404,
        json: expect.objectContaining({ errorName: "KeyNotFoundException" }),
      });
    } finally {
      expect(await program.stop()).toBe(0);
    }
  });
});
