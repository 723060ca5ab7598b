/**
 * `keyhaven seal` and `keyhaven reseal` against the real key service (in process): the
 * sealed values are ordinary KMS ciphertexts that `aws kms decrypt` opens with the
 * documented encryption context, offline values open through asymmetric Decrypt, and
 * reseal goes through ReEncrypt onto the key's current material. One run of the built
 * program proves the stdin/stdout pipe and the flag table.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  GetPublicKeyCommand,
  RotateKeyOnDemandCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { KmsSecret } from "../src/api/v1alpha1/types.js";
import { runReseal, runSeal } from "../src/cmd/seal.js";
import { loadConfig, type ResealConfig } from "../src/config/config.js";
import { readCiphertextHeader } from "../src/kms/crypto/ciphertext.js";
import { openEnvelope, parseEnvelope, sealingContext } from "../src/sealing/sealedValue.js";
import { clientEnv, runCli } from "./support/clients.js";
import {
  kmsClient,
  MAIN_JS,
  startInProcess,
  tempDir,
  type InProcessServer,
} from "./support/server.js";

let server: InProcessServer;
let kms: KMSClient;
let symmetric: string;
let rsa: string;

beforeAll(async () => {
  server = await startInProcess();
  kms = kmsClient(server);
  symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  rsa = (await kms.send(new CreateKeyCommand({ KeySpec: "RSA_3072", KeyUsage: "ENCRYPT_DECRYPT" })))
    .KeyMetadata!.Arn!;
});
afterAll(async () => {
  kms?.destroy();
  await server?.stop();
});

const SECRET = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "db", namespace: "team-a", labels: { app: "orders" } },
  type: "kubernetes.io/basic-auth",
  data: { username: Buffer.from("orders").toString("base64") },
  stringData: { password: "s3cr3t-value" },
};

/** Runs a command's config (parsed by its real flag table) with stdin and captured stdout. */
async function run(argv: string[], stdin: unknown): Promise<KmsSecret> {
  const config = loadConfig(argv, {});
  let out = "";
  const io = {
    stdin: async () => (typeof stdin === "string" ? stdin : JSON.stringify(stdin)),
    stdout: (t: string) => (out += t),
    kms,
  };
  if (config.command === "seal") await runSeal(config, io);
  else await runReseal(config as ResealConfig, io);
  return parse(out) as KmsSecret;
}

const decrypt = async (value: string, context: Record<string, string>) =>
  Buffer.from(
    (
      await kms.send(
        new DecryptCommand({
          CiphertextBlob: Buffer.from(value, "base64"),
          EncryptionContext: context,
        }),
      )
    ).Plaintext!,
  ).toString();

describe("keyhaven seal", () => {
  it("writes a KmsSecret whose values are KMS ciphertexts under the strict context", async () => {
    const out = await run(["seal", "--key", symmetric], SECRET);
    expect(out).toMatchObject({
      apiVersion: "keyhaven.dev/v1alpha1",
      kind: "KmsSecret",
      metadata: { name: "db", namespace: "team-a" },
      spec: {
        keyId: symmetric,
        scope: "strict",
        template: { type: "kubernetes.io/basic-auth", metadata: { labels: { app: "orders" } } },
      },
    });
    expect(Object.keys(out.spec.encryptedData)).toEqual(["password", "username"]);
    expect(JSON.stringify(out)).not.toContain("s3cr3t");
    const ctx = (entry: string) =>
      sealingContext("strict", { namespace: "team-a", name: "db", entry });
    expect(await decrypt(out.spec.encryptedData["password"]!, ctx("password"))).toBe(
      "s3cr3t-value",
    );
    // Another entry's context does not open it.
    await expect(
      decrypt(out.spec.encryptedData["password"]!, ctx("username")),
    ).rejects.toMatchObject({ name: "InvalidCiphertextException" });
  });

  it("a sealed value decrypts with the AWS CLI given the documented encryption context", async () => {
    const out = await run(["seal", "--key", symmetric, "--scope", "namespace-wide"], SECRET);
    const dir = tempDir("keyhaven-seal-cli-");
    writeFileSync(join(dir, "ct.bin"), Buffer.from(out.spec.encryptedData["password"]!, "base64"));
    const awsDecrypt = (context: string) =>
      runCli(
        server,
        ["kms", "decrypt", "--ciphertext-blob", "fileb://ct.bin", "--encryption-context", context],
        { cwd: dir },
      );
    const ok = await awsDecrypt("keyhaven.dev/namespace=team-a");
    expect(ok.code, ok.stderr).toBe(0);
    expect(Buffer.from(ok.json!["Plaintext"] as string, "base64").toString()).toBe("s3cr3t-value");
    expect(ok.json!["KeyId"]).toBe(symmetric);
    const moved = await awsDecrypt("keyhaven.dev/namespace=team-b");
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain("InvalidCiphertextException");
  });

  it("seals offline with GetPublicKey's DER; asymmetric Decrypt + the context open it", async () => {
    const pub = (await kms.send(new GetPublicKeyCommand({ KeyId: rsa }))).PublicKey!;
    const file = join(tempDir("keyhaven-seal-pub-"), "pub.der");
    writeFileSync(file, pub);
    const big = "x".repeat(100_000); // far beyond what RSA-OAEP alone can carry
    const out = await run(["seal", "--key", rsa, "--public-key", file], {
      ...SECRET,
      stringData: { big },
    });
    const blob = Buffer.from(out.spec.encryptedData["big"]!, "base64");
    const envelope = parseEnvelope(blob)!;
    const dataKey = (
      await kms.send(
        new DecryptCommand({
          KeyId: rsa,
          CiphertextBlob: envelope.wrappedKey,
          EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        }),
      )
    ).Plaintext!;
    const ctx = sealingContext("strict", { namespace: "team-a", name: "db", entry: "big" });
    expect(openEnvelope(envelope, dataKey, ctx).toString()).toBe(big);
    expect(() =>
      openEnvelope(envelope, dataKey, { ...ctx, "keyhaven.dev/namespace": "team-b" }),
    ).toThrow(/does not open/);
  });

  it("--merge-into adds and replaces entries in place, keeping the file's name, namespace and scope", async () => {
    const first = await run(["seal", "--key", symmetric, "--scope", "namespace-wide"], SECRET);
    const file = join(tempDir("keyhaven-seal-merge-"), "db.yaml");
    writeFileSync(file, stringify(first));
    const before = first.spec.encryptedData["username"];
    await run(["seal", "--merge-into", file], {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "ignored" },
      stringData: { password: "rotated", token: "t0k3n" },
    });
    const merged = parse(readFileSync(file, "utf8")) as KmsSecret;
    expect(Object.keys(merged.spec.encryptedData)).toEqual(["password", "token", "username"]);
    expect(merged.spec.encryptedData["username"]).toBe(before);
    expect(merged.metadata).toEqual({ name: "db", namespace: "team-a" });
    const ctx = sealingContext("namespace-wide", { namespace: "team-a", name: "db", entry: "" });
    expect(await decrypt(merged.spec.encryptedData["password"]!, ctx)).toBe("rotated");
    await expect(run(["seal", "--merge-into", file, "--scope", "strict"], SECRET)).rejects.toThrow(
      /namespace-wide/,
    );
  });

  it("refuses what it cannot bind, naming the flag", async () => {
    await expect(
      run(["seal", "--key", symmetric], { ...SECRET, metadata: { name: "db" } }),
    ).rejects.toThrow(/--namespace/);
    expect(() => loadConfig(["seal"], {})).toThrow(/--key/);
    expect(() => loadConfig(["seal", "--key", "k", "--scope", "global"], {})).toThrow(
      /strict, namespace-wide or cluster-wide/,
    );
    await expect(run(["seal", "--key", "alias/none"], SECRET)).rejects.toThrow(
      /entry (password|username): Encrypt under alias\/none: NotFoundException/,
    );
  });
});

describe("keyhaven reseal", () => {
  const versionOf = (value: string) =>
    readCiphertextHeader(Buffer.from(value, "base64")).materialVersion;

  it("moves every online value onto the current material with ReEncrypt", async () => {
    const out = await run(["seal", "--key", symmetric], SECRET);
    const v1 = versionOf(out.spec.encryptedData["password"]!);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: symmetric }));
    const resealed = await run(["reseal"], stringify(out));
    const v2 = versionOf(resealed.spec.encryptedData["password"]!);
    expect(v2).toBeGreaterThan(v1);
    const ctx = sealingContext("strict", { namespace: "team-a", name: "db", entry: "password" });
    expect(await decrypt(resealed.spec.encryptedData["password"]!, ctx)).toBe("s3cr3t-value");
    expect(resealed.metadata).toEqual(out.metadata);
  });

  it("the built program pipes a Secret through seal and reseal (stdin → stdout)", async () => {
    const env = clientEnv(server);
    const pipe = (args: string[], input: string) =>
      new Promise<string>((resolve, reject) => {
        const child = execFile(
          process.execPath,
          [MAIN_JS, ...args],
          { env },
          (err, stdout, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        );
        child.stdin!.end(input);
      });
    const sealed = await pipe(["seal", "--key", symmetric], stringify(SECRET));
    const resealed = parse(await pipe(["reseal"], sealed)) as KmsSecret;
    const ctx = sealingContext("strict", { namespace: "team-a", name: "db", entry: "username" });
    expect(await decrypt(resealed.spec.encryptedData["username"]!, ctx)).toBe("orders");
  });
});
