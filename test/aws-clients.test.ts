/**
 * The AWS CLI and boto3 as real client processes against the real server, configured only
 * through the standard AWS_* environment (AWS_ENDPOINT_URL_KMS points them at Keyhaven).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBoto3, runCli } from "./support/clients.js";
import { spawnServer, tempDir, type SpawnedServer } from "./support/server.js";

let server: SpawnedServer;
const KEY_ARN = /^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f-]{36}$/;

beforeAll(async () => {
  server = await spawnServer();
});

afterAll(async () => {
  expect(await server?.stop()).toBe(0);
});

describe("the aws CLI", () => {
  it("creates a key and an alias, round-trips encrypt/decrypt with a context, makes a data key", async () => {
    const created = await runCli(server, ["kms", "create-key", "--description", "cli key"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const metadata = created.json!["KeyMetadata"] as { KeyId: string; Arn: string };
    expect(metadata.Arn).toMatch(KEY_ARN);

    const alias = `alias/cli-${Date.now()}`;
    const aliased = await runCli(server, [
      "kms",
      "create-alias",
      "--alias-name",
      alias,
      "--target-key-id",
      metadata.KeyId,
    ]);
    expect(aliased.code).toBe(0);
    const aliases = await runCli(server, ["kms", "list-aliases", "--key-id", metadata.Arn]);
    expect(aliases.json!["Aliases"]).toEqual([
      expect.objectContaining({ AliasName: alias, TargetKeyId: metadata.KeyId }),
    ]);

    // CLI v1 sends --plaintext as given; fileb:// passes raw bytes.
    const dir = tempDir("keyhaven-cli-");
    const plaintext = Buffer.from([0, 1, 2, 250, 255, ...Buffer.from(" cli secret")]);
    writeFileSync(join(dir, "plain.bin"), plaintext);
    const enc = await runCli(
      server,
      [
        "kms",
        "encrypt",
        "--key-id",
        alias,
        "--plaintext",
        "fileb://plain.bin",
        "--encryption-context",
        "app=cli,stage=test",
      ],
      { cwd: dir },
    );
    expect(enc.code).toBe(0);
    expect(enc.json!["KeyId"]).toBe(metadata.Arn);
    writeFileSync(
      join(dir, "blob.bin"),
      Buffer.from(enc.json!["CiphertextBlob"] as string, "base64"),
    );
    const dec = await runCli(
      server,
      [
        "kms",
        "decrypt",
        "--ciphertext-blob",
        "fileb://blob.bin",
        "--encryption-context",
        "stage=test,app=cli",
      ],
      { cwd: dir },
    );
    expect(dec.code).toBe(0);
    expect(dec.json!["KeyId"]).toBe(metadata.Arn);
    expect(Buffer.from(dec.json!["Plaintext"] as string, "base64").equals(plaintext)).toBe(true);

    const wrong = await runCli(
      server,
      ["kms", "decrypt", "--ciphertext-blob", "fileb://blob.bin", "--encryption-context", "app=x"],
      { cwd: dir },
    );
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("(InvalidCiphertextException)");

    const dk = await runCli(server, [
      "kms",
      "generate-data-key",
      "--key-id",
      alias,
      "--key-spec",
      "AES_256",
    ]);
    expect(dk.code).toBe(0);
    expect(Buffer.from(dk.json!["Plaintext"] as string, "base64")).toHaveLength(32);
    writeFileSync(join(dir, "dk.bin"), Buffer.from(dk.json!["CiphertextBlob"] as string, "base64"));
    const dkDec = await runCli(server, ["kms", "decrypt", "--ciphertext-blob", "fileb://dk.bin"], {
      cwd: dir,
    });
    expect(dkDec.json!["Plaintext"]).toBe(dk.json!["Plaintext"]);
    expect(readFileSync(join(dir, "plain.bin")).equals(plaintext)).toBe(true);
  });

  it("reports an AWS error with a non-zero exit code and the exception name on stderr", async () => {
    const missing = await runCli(server, [
      "kms",
      "describe-key",
      "--key-id",
      "alias/does-not-exist",
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain("(NotFoundException)");
    expect(missing.stderr).toContain(
      "Alias arn:aws:kms:us-east-1:000000000000:alias/does-not-exist is not found.",
    );

    const badSecret = await runCli(server, ["kms", "list-keys"], {
      env: { AWS_SECRET_ACCESS_KEY: "definitely-not-the-secret" },
    });
    expect(badSecret.code).not.toBe(0);
    expect(badSecret.stderr).toContain("(InvalidSignatureException)");
  });
});

describe("boto3", () => {
  it("round-trips encrypt/decrypt and data keys, and sees a wrong context as InvalidCiphertextException", async () => {
    const result = await runBoto3(server, ["roundtrip", `alias/boto3-${Date.now()}`]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const out = result.json!;
    expect(out["keyArn"]).toMatch(KEY_ARN);
    expect(out).toMatchObject({
      encryptKeyId: out["keyArn"],
      decryptKeyId: out["keyArn"],
      roundTrip: true,
      dataKeyLength: 32,
      dataKeyRoundTrip: true,
      wrongContext: "InvalidCiphertextException",
    });
  });

  it("gets ClientError codes and HTTP statuses as AWS sends them", async () => {
    const missing = "12345678-1234-1234-1234-123456789012";
    const result = await runBoto3(server, ["error", missing]);
    expect(result.code).toBe(0);
    expect(result.json).toEqual({
      describeKey: {
        code: "NotFoundException",
        status: 404,
        message: `Key 'arn:aws:kms:us-east-1:000000000000:key/${missing}' does not exist`,
      },
      decryptGarbage: { code: "InvalidCiphertextException", status: 400, message: "" },
      generateRandom: {
        code: "ValidationException",
        status: 400,
        message:
          "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
      },
    });
  });
});
