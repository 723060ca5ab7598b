/**
 * BYOK the way an operator does it, against the real `keyhaven serve` program: key
 * material generated and wrapped with OpenSSL using the public key from
 * GetParametersForImport, imported with the AWS CLI (v1: fileb://, AWS_DEFAULT_REGION,
 * AWS_ENDPOINT_URL_KMS). Then Encrypt/Decrypt work, DeleteImportedKeyMaterial makes
 * both fail with AWS's state error, and re-importing the same material brings the old
 * ciphertext back.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListKeyRotationsCommand } from "@aws-sdk/client-kms";
import { kmsClient, spawnServer, tempDir, type SpawnedServer } from "./support/server.js";

const run = promisify(execFile);

let server: SpawnedServer;
let work: string;

beforeAll(async () => {
  server = await spawnServer();
  work = tempDir("keyhaven-byok-");
});
afterAll(async () => {
  await server?.stop();
});

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: work,
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    AWS_DEFAULT_REGION: server.region,
    AWS_ENDPOINT_URL_KMS: server.url,
    AWS_MAX_ATTEMPTS: "1",
  };
}

/** Runs `aws kms ...` and parses its JSON output. */
async function aws(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run("aws", ["kms", ...args, "--output", "json"], {
    env: env(),
    cwd: work,
  });
  return stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, unknown>);
}

/** Runs `aws kms ...` that must fail; returns the CLI's error text. */
async function awsFails(...args: string[]): Promise<string> {
  try {
    await run("aws", ["kms", ...args], { env: env(), cwd: work });
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
  throw new Error(`aws kms ${args.join(" ")} succeeded`);
}

const openssl = (...args: string[]) => run("openssl", args, { cwd: work });
const file = (name: string) => join(work, name);

/** GetParametersForImport via the CLI; writes PublicKey.der and ImportToken.bin. */
async function parameters(keyId: string, algorithm: string, tag: string) {
  const out = await aws(
    "get-parameters-for-import",
    "--key-id",
    keyId,
    "--wrapping-algorithm",
    algorithm,
    "--wrapping-key-spec",
    "RSA_3072",
  );
  writeFileSync(file(`PublicKey-${tag}.der`), Buffer.from(out["PublicKey"] as string, "base64"));
  writeFileSync(
    file(`ImportToken-${tag}.bin`),
    Buffer.from(out["ImportToken"] as string, "base64"),
  );
}

async function importMaterial(keyId: string, tag: string) {
  return aws(
    "import-key-material",
    "--key-id",
    keyId,
    "--encrypted-key-material",
    `fileb://${file(`EncryptedKeyMaterial-${tag}.bin`)}`,
    "--import-token",
    `fileb://${file(`ImportToken-${tag}.bin`)}`,
    "--expiration-model",
    "KEY_MATERIAL_DOES_NOT_EXPIRE",
  );
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The key's current KeyMaterialId, read with the SDK (whose model always has the field). */
async function currentMaterialId(keyId: string): Promise<string | undefined> {
  const { Rotations } = await kmsClient(server).send(
    new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: "ALL_KEY_MATERIAL" }),
  );
  return Rotations?.find((r) => r.KeyMaterialState === "CURRENT")?.KeyMaterialId;
}

describe("BYOK with OpenSSL and the AWS CLI", () => {
  it("imports, encrypts, loses the material, and gets it back by re-import", async () => {
    const created = await aws("create-key", "--origin", "EXTERNAL", "--description", "byok");
    const meta = created["KeyMetadata"] as { KeyId: string; Arn: string; KeyState: string };
    expect(meta.KeyState).toBe("PendingImport");
    const keyId = meta.KeyId;

    // Step 1: 256 bits of key material, made locally.
    await openssl("rand", "-out", file("PlaintextKeyMaterial.bin"), "32");

    // Step 2: RSAES_OAEP_SHA_256, exactly as AWS's developer guide shows it.
    await parameters(keyId, "RSAES_OAEP_SHA_256", "oaep");
    await openssl(
      "pkeyutl",
      "-encrypt",
      "-in",
      file("PlaintextKeyMaterial.bin"),
      "-out",
      file("EncryptedKeyMaterial-oaep.bin"),
      "-inkey",
      file("PublicKey-oaep.der"),
      "-keyform",
      "DER",
      "-pubin",
      "-pkeyopt",
      "rsa_padding_mode:oaep",
      "-pkeyopt",
      "rsa_oaep_md:sha256",
      "-pkeyopt",
      "rsa_mgf1_md:sha256",
    );
    const imported = await importMaterial(keyId, "oaep");
    const importedId = await currentMaterialId(keyId);
    expect(importedId).toMatch(/^[0-9a-f]{64}$/);
    // CLIs older than the 2025 model (trixie's 2.23) drop the field from their output.
    if ("KeyMaterialId" in imported) expect(imported["KeyMaterialId"]).toBe(importedId);
    expect(
      ((await aws("describe-key", "--key-id", keyId))["KeyMetadata"] as { KeyState: string })
        .KeyState,
    ).toBe("Enabled");

    writeFileSync(file("secret.txt"), "bring your own key");
    const encrypted = await aws(
      "encrypt",
      "--key-id",
      keyId,
      "--plaintext",
      `fileb://${file("secret.txt")}`,
    );
    writeFileSync(file("secret.enc"), Buffer.from(encrypted["CiphertextBlob"] as string, "base64"));
    const decrypt = async () =>
      Buffer.from(
        (await aws("decrypt", "--ciphertext-blob", `fileb://${file("secret.enc")}`))[
          "Plaintext"
        ] as string,
        "base64",
      ).toString();
    expect(await decrypt()).toBe("bring your own key");

    // Deleting the material makes Encrypt and Decrypt fail with AWS's state error.
    await aws("delete-imported-key-material", "--key-id", keyId);
    // AWS CLI 2.2x adds " (reached max retries: N)" before the colon; the rest is AWS's text.
    const pendingImport = (operation: string) =>
      new RegExp(
        `KMSInvalidStateException\\) when calling the ${operation} operation(?: \\(reached max retries: \\d+\\))?: ${escapeRegExp(meta.Arn)} is pending import\\.`,
      );
    expect(await awsFails("decrypt", "--ciphertext-blob", `fileb://${file("secret.enc")}`)).toMatch(
      pendingImport("Decrypt"),
    );
    expect(
      await awsFails("encrypt", "--key-id", keyId, "--plaintext", `fileb://${file("secret.txt")}`),
    ).toMatch(pendingImport("Encrypt"));

    // Re-import the same material, this time with RSA_AES_KEY_WRAP_SHA_256: an ephemeral
    // AES key wraps the material (RFC 5649), RSA-OAEP wraps the AES key, concatenated.
    await parameters(keyId, "RSA_AES_KEY_WRAP_SHA_256", "kwp");
    await openssl("rand", "-out", file("aes-key.bin"), "32");
    const aesHex = readFileSync(file("aes-key.bin")).toString("hex");
    await openssl(
      "enc",
      "-id-aes256-wrap-pad",
      "-K",
      aesHex,
      "-iv",
      "A65959A6",
      "-in",
      file("PlaintextKeyMaterial.bin"),
      "-out",
      file("material-wrapped.bin"),
    );
    await openssl(
      "pkeyutl",
      "-encrypt",
      "-in",
      file("aes-key.bin"),
      "-out",
      file("aes-key-wrapped.bin"),
      "-inkey",
      file("PublicKey-kwp.der"),
      "-keyform",
      "DER",
      "-pubin",
      "-pkeyopt",
      "rsa_padding_mode:oaep",
      "-pkeyopt",
      "rsa_oaep_md:sha256",
      "-pkeyopt",
      "rsa_mgf1_md:sha256",
    );
    writeFileSync(
      file("EncryptedKeyMaterial-kwp.bin"),
      Buffer.concat([
        readFileSync(file("aes-key-wrapped.bin")),
        readFileSync(file("material-wrapped.bin")),
      ]),
    );
    const reimported = await importMaterial(keyId, "kwp");
    expect(await currentMaterialId(keyId)).toBe(importedId);
    if ("KeyMaterialId" in reimported) expect(reimported["KeyMaterialId"]).toBe(importedId);
    expect(await decrypt()).toBe("bring your own key");

    // Different material is refused.
    await openssl("rand", "-out", file("OtherMaterial.bin"), "32");
    await parameters(keyId, "RSAES_OAEP_SHA_256", "other");
    await openssl(
      "pkeyutl",
      "-encrypt",
      "-in",
      file("OtherMaterial.bin"),
      "-out",
      file("EncryptedKeyMaterial-other.bin"),
      "-inkey",
      file("PublicKey-other.der"),
      "-keyform",
      "DER",
      "-pubin",
      "-pkeyopt",
      "rsa_padding_mode:oaep",
      "-pkeyopt",
      "rsa_oaep_md:sha256",
    );
    expect(
      await awsFails(
        "import-key-material",
        "--key-id",
        keyId,
        "--encrypted-key-material",
        `fileb://${file("EncryptedKeyMaterial-other.bin")}`,
        "--import-token",
        `fileb://${file("ImportToken-other.bin")}`,
        "--expiration-model",
        "KEY_MATERIAL_DOES_NOT_EXPIRE",
      ),
    ).toContain("IncorrectKeyMaterialException");

    // Nothing secret reached the server's output (logs and audit lines).
    const material = readFileSync(file("PlaintextKeyMaterial.bin"));
    const logs = server.output() + server.stderr();
    expect(logs).not.toContain(material.toString("base64"));
    expect(logs).not.toContain(material.toString("hex"));
    expect(logs).toContain('"operation":"ImportKeyMaterial"');
  }, 240_000); // the AWS CLI takes a second or two to start, per call
});
