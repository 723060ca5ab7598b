/**
 * Keyhaven as the XKS client, against Keyhaven as the XKS proxy: two real `keyhaven serve`
 * processes. A has an EXTERNAL_KEY_STORE custom key store whose proxy is B's
 * `--xks-proxy-uri-path` over HTTPS; A's keys have an XksKeyId naming a key of B. Driven by
 * the AWS CLI, boto3 and the SDK: the store's lifecycle, double encryption, B's audit of A's
 * request metadata, and A's answers while B's key is disabled, B is frozen (timeout), B is
 * stopped, and A's credential is refused by B's key policy or gone from B's credentials file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { join } from "node:path";
import {
  ConnectCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DisableKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EnableKeyCommand,
  EncryptCommand,
  PutKeyPolicyCommand,
  UpdateCustomKeyStoreCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeExternalCiphertext, externalAad } from "../src/kms/crypto/externalKeyCiphertext.js";
import { XksClient } from "../src/kms/xks/client.js";
import { runBoto3, runCli } from "./support/clients.js";
import { cliError, describeStore, untilState } from "./support/customKeyStores.js";
import { failure } from "./support/errors.js";
import {
  kmsClient,
  selfSignedCertificate,
  spawnServer,
  tempDir,
  writeCredentialsFile,
  type SpawnedServer,
} from "./support/server.js";
import { XKS_PREFIX, XKS_PRINCIPAL, xksCredentialEntry } from "./support/xksProxy.js";
import { xksCredential } from "./support/xksSpecClient.js";

/** A's timeout for each proxy call (serve --xks-client-timeout). */
const TIMEOUT_MS = 1000;
/** How much later than "at once" (or than the timeout) a failure may come on a loaded machine. */
const SLACK_MS = 4000;
const URI_PATH = `${XKS_PREFIX}/kms/xks/v1`;
const CONTEXT = { purpose: "xks" };

const dirB = tempDir("keyhaven-xks-b-");
const tls = selfSignedCertificate(dirB);
const ca = readFileSync(tls.cert);
const xksCred = xksCredential();
const credsB = writeCredentialsFile(dirB, "000000000000", xksCredentialEntry(xksCred));
const credsText = readFileSync(credsB.path, "utf8");

let a: SpawnedServer;
let b: SpawnedServer;
let kmsA: KMSClient;
let kmsB: KMSClient;
let agentB: Agent;
/** B's port, kept across B's restarts so that A's store keeps its endpoint. */
let listenB: string;
let endpoint: string;
/** B's key that A's keys name as XksKeyId. */
let externalKeyId: string;
/** B's key that boto3's key in A names (each KMS key has an external key of its own). */
let boto3ExternalKeyId: string;
let storeId: string;
let keyArn: string;

async function startB(): Promise<void> {
  b = await spawnServer({
    dataDir: dirB,
    credentials: credsB,
    timeoutMs: 60_000,
    args: [
      "--tls-cert",
      tls.cert,
      "--tls-key",
      tls.key,
      "--xks-proxy-uri-path",
      XKS_PREFIX,
      ...(listenB ? ["--listen", listenB] : []),
    ],
  });
  listenB = new URL(b.url).host;
  kmsB?.destroy();
  kmsB = kmsClient(b, { httpsAgent: agentB });
}

/** AWS CLI v1 fetches an https:// parameter value unless told not to (docs/external-key-stores.md). */
const cliConfig = join(dirB, "aws-cli-config");
writeFileSync(cliConfig, "[default]\ncli_follow_urlparam = false\n");
const cliA = (...args: string[]) =>
  runCli(a, ["kms", ...args], { env: { AWS_CONFIG_FILE: cliConfig } });

const createStore = (name: string, overrides: Record<string, string> = {}) => {
  const options: Record<string, string> = {
    "--custom-key-store-name": name,
    "--custom-key-store-type": "EXTERNAL_KEY_STORE",
    "--xks-proxy-uri-endpoint": endpoint,
    "--xks-proxy-uri-path": URI_PATH,
    "--xks-proxy-connectivity": "PUBLIC_ENDPOINT",
    "--xks-proxy-authentication-credential": JSON.stringify({
      AccessKeyId: xksCred.accessKeyId,
      RawSecretAccessKey: xksCred.secretAccessKey,
    }),
    ...overrides,
  };
  return cliA("create-custom-key-store", ...Object.entries(options).flat());
};

const encryptA = (plaintext = "hello") =>
  kmsA.send(
    new EncryptCommand({
      KeyId: keyArn,
      Plaintext: Buffer.from(plaintext),
      EncryptionContext: CONTEXT,
    }),
  );
const decryptA = (blob: Uint8Array) =>
  kmsA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CONTEXT }));

/** A's failure of `call`, and how long it took. */
async function timedFailure(call: () => Promise<unknown>) {
  const started = Date.now();
  const f = await failure(call());
  return { ...f, ms: Date.now() - started };
}

/** Disconnects and connects A's store again; resolves with the state it settles in. */
async function reconnect(): Promise<Record<string, unknown>> {
  await kmsA.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  await kmsA.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = await kmsA.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }));
    const store = out.CustomKeyStores![0]!;
    if (store.ConnectionState !== "CONNECTING") return store as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error("the store stayed CONNECTING");
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  agentB = new Agent({ ca });
  await startB();
  endpoint = `https://localhost:${new URL(b.url).port}`;
  a = await spawnServer({
    timeoutMs: 60_000,
    args: ["--xks-client-ca", tls.cert, "--xks-client-timeout", `${TIMEOUT_MS}ms`],
  });
  kmsA = kmsClient(a);
  const key = await kmsB.send(new CreateKeyCommand({ Description: "B's external key" }));
  externalKeyId = key.KeyMetadata!.KeyId!;
}, 150_000);

afterAll(async () => {
  if (b?.process.exitCode === null) b.process.kill("SIGCONT");
  kmsA?.destroy();
  kmsB?.destroy();
  agentB?.destroy();
  await a?.stop();
  await b?.stop();
});

describe("A's external key store on B's XKS proxy", () => {
  it("CreateCustomKeyStore checks the members and the proxy (AWS CLI); DescribeCustomKeyStores never shows the secret", async () => {
    const vpc = await createStore("vpc", { "--xks-proxy-connectivity": "VPC_ENDPOINT_SERVICE" });
    expect(cliError(vpc), vpc.stderr + vpc.stdout).toBe(
      "XksProxyVpcEndpointServiceNotFoundException",
    );
    // 44 characters, none of them allowed: the CLI sends it, the server's model refuses it.
    const badSecret = "!".repeat(44);
    const short = await createStore("bad-secret", {
      "--xks-proxy-authentication-credential": JSON.stringify({
        AccessKeyId: xksCred.accessKeyId,
        RawSecretAccessKey: badSecret,
      }),
    });
    expect(cliError(short), short.stderr).toBe("ValidationException");
    expect(short.stderr).toContain("rawSecretAccessKey");
    expect(short.stderr).not.toContain(badSecret);
    const wrong = await createStore("wrong", {
      "--xks-proxy-authentication-credential": JSON.stringify({
        AccessKeyId: xksCred.accessKeyId,
        RawSecretAccessKey: xksCredential().secretAccessKey,
      }),
    });
    expect(cliError(wrong)).toBe("XksProxyIncorrectAuthenticationCredentialException");
    expect(
      cliError(await createStore("path", { "--xks-proxy-uri-path": "/nobody/kms/xks/v1" })),
    ).toBe("XksProxyInvalidConfigurationException");

    const created = await createStore("b-proxy");
    expect(created.code, created.stderr).toBe(0);
    storeId = created.json!["CustomKeyStoreId"] as string;
    expect(storeId).toMatch(/^cks-[0-9a-f]{17}$/);
    expect(cliError(await createStore("again"))).toBe("XksProxyUriInUseException");
    expect(await describeStore(a, storeId)).toEqual({
      CustomKeyStoreId: storeId,
      CustomKeyStoreName: "b-proxy",
      CustomKeyStoreType: "EXTERNAL_KEY_STORE",
      XksProxyConfiguration: {
        Connectivity: "PUBLIC_ENDPOINT",
        AccessKeyId: xksCred.accessKeyId,
        UriEndpoint: endpoint,
        UriPath: URI_PATH,
      },
      ConnectionState: "DISCONNECTED",
      CreationDate: expect.anything(),
    });
    expect((await cliA("connect-custom-key-store", "--custom-key-store-id", storeId)).code).toBe(0);
    await untilState(a, storeId, "CONNECTED");
    const all = await cliA("describe-custom-key-stores");
    expect(all.stdout).not.toContain(xksCred.secretAccessKey);
    expect(a.output() + a.stderr()).not.toContain(xksCred.secretAccessKey);
  }, 300_000);

  it("CreateKey checks the XksKeyId with GetKeyMetadata; DescribeKey shows XksKeyConfiguration", async () => {
    const create = (xksKeyId: string) =>
      kmsA.send(
        new CreateKeyCommand({
          Origin: "EXTERNAL_KEY_STORE",
          CustomKeyStoreId: storeId,
          XksKeyId: xksKeyId,
        }),
      );
    expect((await failure(create("no-such-key"))).name).toBe("XksKeyNotFoundException");
    const rsa = await kmsB.send(
      new CreateKeyCommand({ KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT" }),
    );
    expect((await failure(create(rsa.KeyMetadata!.KeyId!))).name).toBe(
      "XksKeyInvalidConfigurationException",
    );
    const off = await kmsB.send(new CreateKeyCommand({}));
    await kmsB.send(new DisableKeyCommand({ KeyId: off.KeyMetadata!.KeyId! }));
    expect((await failure(create(off.KeyMetadata!.KeyId!))).name).toBe(
      "XksKeyInvalidConfigurationException",
    );
    expect(
      (
        await failure(
          kmsA.send(
            new CreateKeyCommand({ Origin: "EXTERNAL_KEY_STORE", CustomKeyStoreId: storeId }),
          ),
        )
      ).name,
    ).toBe("ValidationException");

    const made = await cliA(
      "create-key",
      "--origin",
      "EXTERNAL_KEY_STORE",
      "--custom-key-store-id",
      storeId,
      "--xks-key-id",
      externalKeyId,
    );
    expect(made.code, made.stderr).toBe(0);
    keyArn = (made.json!["KeyMetadata"] as { Arn: string }).Arn;
    const described = await cliA("describe-key", "--key-id", keyArn);
    expect(described.json!["KeyMetadata"]).toMatchObject({
      Origin: "EXTERNAL_KEY_STORE",
      KeyState: "Enabled",
      CustomKeyStoreId: storeId,
      XksKeyConfiguration: { Id: externalKeyId },
    });
    // Each KMS key of an external key store has an external key of its own.
    expect((await failure(create(externalKeyId))).name).toBe("XksKeyAlreadyInUseException");
  }, 120_000);

  it("encrypts and decrypts with the AWS CLI", async () => {
    const dir = tempDir("keyhaven-xks-cli-");
    writeFileSync(join(dir, "plain.bin"), "sent through two layers\n");
    const enc = await runCli(
      a,
      [
        "kms",
        "encrypt",
        "--key-id",
        keyArn,
        "--plaintext",
        "fileb://plain.bin",
        "--encryption-context",
        "purpose=xks",
      ],
      { cwd: dir },
    );
    expect(enc.code, enc.stderr).toBe(0);
    writeFileSync(
      join(dir, "blob.bin"),
      Buffer.from(enc.json!["CiphertextBlob"] as string, "base64"),
    );
    const dec = await runCli(
      a,
      [
        "kms",
        "decrypt",
        "--ciphertext-blob",
        "fileb://blob.bin",
        "--encryption-context",
        "purpose=xks",
      ],
      { cwd: dir },
    );
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.json!["KeyId"]).toBe(keyArn);
    expect(Buffer.from(dec.json!["Plaintext"] as string, "base64").toString()).toBe(
      "sent through two layers\n",
    );
  }, 60_000);

  it("Encrypt, Decrypt, ReEncrypt and GenerateDataKey* with boto3", async () => {
    // Another external key of B: externalKeyId is taken by the CLI's key.
    boto3ExternalKeyId = (
      await kmsB.send(new CreateKeyCommand({ Description: "B's key for boto3" }))
    ).KeyMetadata!.KeyId!;
    const r = await runBoto3(a, ["xks-key", storeId, boto3ExternalKeyId]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      store: {
        CustomKeyStoreId: storeId,
        ConnectionState: "CONNECTED",
        XksProxyConfiguration: { UriEndpoint: endpoint, UriPath: URI_PATH },
      },
      origin: "EXTERNAL_KEY_STORE",
      keyState: "Enabled",
      customKeyStoreId: storeId,
      xksKeyConfiguration: { Id: boto3ExternalKeyId },
      roundTrip: true,
      reEncrypted: true,
      dataKey: true,
      dataKeyWithoutPlaintext: true,
      // As AWS: the proxy refuses the outer layer, whose AAD binds the context.
      wrongContext: "KMSInvalidStateException",
      rotation: "UnsupportedOperationException",
    });
  }, 60_000);

  it("double encryption: B's key alone gives back only Keyhaven's inner ciphertext", async () => {
    const secret = "needs both keys";
    const blob = Buffer.from((await encryptA(secret)).CiphertextBlob!);
    expect(blob[0]).toBe(0x03);
    const { head, sealed } = decodeExternalCiphertext(blob);
    const xks = new XksClient({
      endpoint,
      uriPath: URI_PATH,
      credential: xksCred,
      region: b.region,
      ca,
      timeoutMs: 10_000,
    });
    try {
      const inner = await xks.decrypt(externalKeyId, sealed, externalAad(head, CONTEXT), {
        awsPrincipalArn: "arn:aws:iam::000000000000:user/test",
        kmsOperation: "Decrypt",
        kmsRequestId: "double-encryption",
        kmsKeyArn: keyArn,
      });
      expect(inner[0]).toBe(0x01);
      expect(inner.subarray(1, 21)).toEqual(blob.subarray(1, 21));
      expect(inner.toString("latin1")).not.toContain(secret);
    } finally {
      xks.close();
    }
    expect(Buffer.from((await decryptA(blob)).Plaintext!).toString()).toBe(secret);
  });

  it("B's audit shows A's request metadata: principal, operation and key ARN", async () => {
    await decryptA((await encryptA()).CiphertextBlob!);
    const lines = b
      .output()
      .split("\n")
      .filter((l) => l.includes('"eventSource":"kms-xks-proxy"'))
      .map(
        (l) =>
          JSON.parse(l) as {
            eventName: string;
            userIdentity?: { arn: string };
            requestParameters?: { requestMetadata?: Record<string, string> };
          },
      );
    // Encrypt and Decrypt of this key just now; GenerateDataKey and ReEncrypt of boto3's key.
    const ownKey = (op: string) => op === "Encrypt" || op === "Decrypt";
    const seen = (op: string) =>
      lines.find(
        (l) =>
          l.requestParameters?.requestMetadata?.["kmsOperation"] === op &&
          (!ownKey(op) || l.requestParameters.requestMetadata["kmsKeyArn"] === keyArn),
      );
    for (const [op, xksOp] of [
      ["Encrypt", "Encrypt"],
      ["Decrypt", "Decrypt"],
      ["GenerateDataKey", "Encrypt"],
      ["ReEncrypt", "Decrypt"],
    ] as const)
      expect(seen(op), op).toMatchObject({
        eventName: xksOp,
        userIdentity: { arn: XKS_PRINCIPAL },
        requestParameters: {
          keyId: ownKey(op) ? externalKeyId : boto3ExternalKeyId,
          requestMetadata: {
            awsPrincipalArn: a.credentials.principal,
            kmsOperation: op,
            kmsKeyArn: ownKey(op)
              ? keyArn
              : expect.stringMatching(/^arn:aws:kms:us-east-1:000000000000:key\//),
            kmsRequestId: expect.any(String),
          },
        },
      });
    expect(
      lines.find((l) => l.requestParameters?.requestMetadata?.["kmsOperation"] === "CreateKey"),
    ).toMatchObject({
      eventName: "GetKeyMetadata",
    });
    expect(b.output()).not.toContain(xksCred.secretAccessKey);
  });

  it("B's key disabled: A's calls fail with KMSInvalidStateException at once, and work once it is enabled", async () => {
    const blob = (await encryptA()).CiphertextBlob!;
    await kmsB.send(new DisableKeyCommand({ KeyId: externalKeyId }));
    for (const call of [() => encryptA(), () => decryptA(blob)]) {
      const f = await timedFailure(call);
      expect(f.name).toBe("KMSInvalidStateException");
      expect(f.message).toContain("is not enabled in the external key manager");
      expect(f.ms).toBeLessThan(SLACK_MS);
    }
    await kmsB.send(new EnableKeyCommand({ KeyId: externalKeyId }));
    expect(Buffer.from((await decryptA(blob)).Plaintext!).toString()).toBe("hello");
  });

  it("A's credential refused by B's key policy: KMSInvalidStateException, and work once allowed again", async () => {
    const policy = (deny: boolean) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { AWS: "arn:aws:iam::000000000000:root" },
            Action: "kms:*",
            Resource: "*",
          },
          ...(deny
            ? [
                {
                  Effect: "Deny",
                  Principal: { AWS: XKS_PRINCIPAL },
                  Action: "kms:*",
                  Resource: "*",
                },
              ]
            : []),
        ],
      });
    const blob = (await encryptA()).CiphertextBlob!;
    await kmsB.send(new PutKeyPolicyCommand({ KeyId: externalKeyId, Policy: policy(true) }));
    const f = await timedFailure(() => decryptA(blob));
    expect(f.name).toBe("KMSInvalidStateException");
    expect(f.message).toContain("denied access");
    expect(f.ms).toBeLessThan(SLACK_MS);
    await kmsB.send(new PutKeyPolicyCommand({ KeyId: externalKeyId, Policy: policy(false) }));
    expect(Buffer.from((await decryptA(blob)).Plaintext!).toString()).toBe("hello");
  });

  it("B frozen (SIGSTOP): A's calls time out after --xks-client-timeout, and work once B runs again", async () => {
    const blob = (await encryptA()).CiphertextBlob!;
    b.process.kill("SIGSTOP");
    try {
      const f = await timedFailure(() => decryptA(blob));
      expect(f.name).toBe("KMSInvalidStateException");
      expect(f.message).toContain("did not respond in time");
      expect(f.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(f.ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    } finally {
      b.process.kill("SIGCONT");
    }
    expect(Buffer.from((await decryptA(blob)).Plaintext!).toString()).toBe("hello");
  });

  it("B stopped, then back without A's credential in its credentials file: AWS's errors and connection error codes; back with it: works", async () => {
    const blob = (await encryptA()).CiphertextBlob!;
    await b.stop();
    const down = await timedFailure(() => decryptA(blob));
    expect(down.name).toBe("KMSInvalidStateException");
    expect(down.message).toContain("cannot communicate with the external key store proxy");
    expect(down.ms).toBeLessThan(SLACK_MS);
    // As AWS: the store stays CONNECTED while its proxy is away ...
    expect((await describeStore(a, storeId))["ConnectionState"]).toBe("CONNECTED");
    // ... and a new connection attempt fails with the reason.
    expect(await reconnect()).toMatchObject({
      ConnectionState: "FAILED",
      ConnectionErrorCode: "XKS_PROXY_NOT_REACHABLE",
    });
    expect((await failure(encryptA())).name).toBe("KMSInvalidStateException");

    writeFileSync(credsB.path, credsText.replace(xksCredentialEntry(xksCred), ""), { mode: 0o600 });
    await startB();
    expect(await reconnect()).toMatchObject({
      ConnectionState: "FAILED",
      ConnectionErrorCode: "XKS_PROXY_ACCESS_DENIED",
    });

    writeFileSync(credsB.path, credsText, { mode: 0o600 });
    await b.stop();
    await startB();
    expect(await reconnect()).toMatchObject({ ConnectionState: "CONNECTED" });
    expect(Buffer.from((await decryptA(blob)).Plaintext!).toString()).toBe("hello");
  }, 120_000);

  it("UpdateCustomKeyStore only while DISCONNECTED; DeleteCustomKeyStore refused while keys exist", async () => {
    const update = () =>
      kmsA.send(
        new UpdateCustomKeyStoreCommand({
          CustomKeyStoreId: storeId,
          XksProxyUriPath: "/elsewhere/kms/xks/v1",
        }),
      );
    expect((await failure(update())).name).toBe("CustomKeyStoreInvalidStateException");
    await kmsA.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await update();
    expect((await describeStore(a, storeId))["XksProxyConfiguration"]).toMatchObject({
      UriPath: "/elsewhere/kms/xks/v1",
    });
    await kmsA.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(await untilState(a, storeId, "FAILED")).toMatchObject({
      ConnectionErrorCode: "XKS_PROXY_INVALID_CONFIGURATION",
    });
    const described = await cliA("describe-key", "--key-id", keyArn);
    expect(described.json!["KeyMetadata"]).toMatchObject({ KeyState: "Unavailable" });
    await kmsA.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(
      (await failure(kmsA.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId }))))
        .name,
    ).toBe("CustomKeyStoreHasCMKsException");
  }, 60_000);
});
