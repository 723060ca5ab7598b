/**
 * The asymmetric and HMAC scenarios of issue 3 through the two other real clients: the
 * `aws` CLI (v1, blobs as fileb://) and boto3, each as a child process against the real
 * `keyhaven serve` program. Outputs are checked with OpenSSL and node:crypto.
 */
import { execFile } from "node:child_process";
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  verify as nodeVerify,
} from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, GetPublicKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslDgstVerify, opensslPkeyutlVerifyDigest } from "./support/asymmetric-openssl.js";
import { clientEnv, runCli } from "./support/clients.js";
import {
  kmsClient,
  REPO_ROOT,
  spawnServer,
  tempDir,
  type SpawnedServer,
} from "./support/server.js";

let server: SpawnedServer;
let kms: KMSClient;

beforeAll(async () => {
  server = await spawnServer();
  kms = kmsClient(server);
});

afterAll(async () => {
  kms?.destroy();
  expect(await server?.stop()).toBe(0);
});

const b64 = (s: string): Buffer => Buffer.from(s, "base64");

async function createKey(KeySpec: string, KeyUsage?: string): Promise<string> {
  const out = await kms.send(
    new CreateKeyCommand({
      KeySpec: KeySpec as never,
      ...(KeyUsage !== undefined && { KeyUsage: KeyUsage as never }),
    }),
  );
  return out.KeyMetadata!.Arn!;
}

describe("the aws CLI", () => {
  it("creates, signs (RAW and DIGEST), verifies, and the signatures verify with OpenSSL", async () => {
    const dir = tempDir("keyhaven-cli-asym-");
    const created = await runCli(server, [
      "kms",
      "create-key",
      "--key-spec",
      "ECC_NIST_P256",
      "--key-usage",
      "SIGN_VERIFY",
    ]);
    expect(created.code).toBe(0);
    const keyId = (created.json!["KeyMetadata"] as { Arn: string }).Arn;
    expect(
      (created.json!["KeyMetadata"] as { SigningAlgorithms: string[] }).SigningAlgorithms,
    ).toEqual(["ECDSA_SHA_256"]);
    const message = Buffer.from("signed through the aws CLI\n");
    writeFileSync(join(dir, "message.bin"), message);
    writeFileSync(join(dir, "digest.bin"), createHash("sha256").update(message).digest());
    const signed = await runCli(
      server,
      [
        "kms",
        "sign",
        "--key-id",
        keyId,
        "--message",
        "fileb://message.bin",
        "--signing-algorithm",
        "ECDSA_SHA_256",
      ],
      { cwd: dir },
    );
    expect(signed.code).toBe(0);
    const signature = b64(signed.json!["Signature"] as string);
    const pub = await runCli(server, ["kms", "get-public-key", "--key-id", keyId]);
    expect(pub.json).toMatchObject({
      KeyId: keyId,
      KeySpec: "ECC_NIST_P256",
      KeyUsage: "SIGN_VERIFY",
    });
    const publicKeyDer = b64(pub.json!["PublicKey"] as string);
    expect(opensslDgstVerify(publicKeyDer, "ECDSA_SHA_256", message, signature)).toBe(true);

    const digestSigned = await runCli(
      server,
      [
        "kms",
        "sign",
        "--key-id",
        keyId,
        "--message",
        "fileb://digest.bin",
        "--message-type",
        "DIGEST",
        "--signing-algorithm",
        "ECDSA_SHA_256",
      ],
      { cwd: dir },
    );
    const digestSignature = b64(digestSigned.json!["Signature"] as string);
    expect(
      opensslPkeyutlVerifyDigest(
        publicKeyDer,
        "ECDSA_SHA_256",
        createHash("sha256").update(message).digest(),
        digestSignature,
      ),
    ).toBe(true);

    writeFileSync(join(dir, "sig.bin"), signature);
    const verified = await runCli(
      server,
      [
        "kms",
        "verify",
        "--key-id",
        keyId,
        "--message",
        "fileb://message.bin",
        "--signature",
        "fileb://sig.bin",
        "--signing-algorithm",
        "ECDSA_SHA_256",
      ],
      { cwd: dir },
    );
    expect(verified.json).toMatchObject({ SignatureValid: true, KeyId: keyId });
    const bad = Buffer.from(signature);
    bad[bad.length - 1]! ^= 1;
    writeFileSync(join(dir, "bad.bin"), bad);
    const refused = await runCli(
      server,
      [
        "kms",
        "verify",
        "--key-id",
        keyId,
        "--message",
        "fileb://message.bin",
        "--signature",
        "fileb://bad.bin",
        "--signing-algorithm",
        "ECDSA_SHA_256",
      ],
      { cwd: dir },
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("KMSInvalidSignatureException");
  });

  it("decrypts data encrypted locally with the RSA public key; Encrypt enforces the OAEP limit", async () => {
    const dir = tempDir("keyhaven-cli-rsa-");
    const keyId = await createKey("RSA_2048", "ENCRYPT_DECRYPT");
    const pub = await runCli(server, ["kms", "get-public-key", "--key-id", keyId]);
    const publicKey = createPublicKey({
      key: b64(pub.json!["PublicKey"] as string),
      format: "der",
      type: "spki",
    });
    const secret = Buffer.from("for the CLI to decrypt");
    writeFileSync(
      join(dir, "ct.bin"),
      publicEncrypt(
        { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        secret,
      ),
    );
    const dec = await runCli(
      server,
      [
        "kms",
        "decrypt",
        "--key-id",
        keyId,
        "--ciphertext-blob",
        "fileb://ct.bin",
        "--encryption-algorithm",
        "RSAES_OAEP_SHA_256",
      ],
      { cwd: dir },
    );
    expect(dec.code).toBe(0);
    expect(b64(dec.json!["Plaintext"] as string).equals(secret)).toBe(true);
    expect(dec.json!["EncryptionAlgorithm"]).toBe("RSAES_OAEP_SHA_256");
    writeFileSync(join(dir, "big.bin"), Buffer.alloc(191));
    const big = await runCli(
      server,
      [
        "kms",
        "encrypt",
        "--key-id",
        keyId,
        "--plaintext",
        "fileb://big.bin",
        "--encryption-algorithm",
        "RSAES_OAEP_SHA_256",
      ],
      { cwd: dir },
    );
    expect(big.code).not.toBe(0);
    expect(big.stderr).toContain(
      "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.",
    );
  });

  it("generates and verifies MACs, refuses a flipped bit, and makes data key pairs that match", async () => {
    const dir = tempDir("keyhaven-cli-mac-");
    const macKey = await createKey("HMAC_384", "GENERATE_VERIFY_MAC");
    writeFileSync(join(dir, "m.bin"), Buffer.from("mac me"));
    const mac = await runCli(
      server,
      [
        "kms",
        "generate-mac",
        "--key-id",
        macKey,
        "--message",
        "fileb://m.bin",
        "--mac-algorithm",
        "HMAC_SHA_384",
      ],
      { cwd: dir },
    );
    const macBytes = b64(mac.json!["Mac"] as string);
    expect(macBytes.length).toBe(48);
    writeFileSync(join(dir, "mac.bin"), macBytes);
    const ok = await runCli(
      server,
      [
        "kms",
        "verify-mac",
        "--key-id",
        macKey,
        "--message",
        "fileb://m.bin",
        "--mac",
        "fileb://mac.bin",
        "--mac-algorithm",
        "HMAC_SHA_384",
      ],
      { cwd: dir },
    );
    expect(ok.json).toMatchObject({ MacValid: true });
    macBytes[5]! ^= 4;
    writeFileSync(join(dir, "bad.bin"), macBytes);
    const bad = await runCli(
      server,
      [
        "kms",
        "verify-mac",
        "--key-id",
        macKey,
        "--message",
        "fileb://m.bin",
        "--mac",
        "fileb://bad.bin",
        "--mac-algorithm",
        "HMAC_SHA_384",
      ],
      { cwd: dir },
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("KMSInvalidMacException");

    const symmetric = await createKey("SYMMETRIC_DEFAULT");
    const pair = await runCli(server, [
      "kms",
      "generate-data-key-pair",
      "--key-id",
      symmetric,
      "--key-pair-spec",
      "RSA_2048",
      "--encryption-context",
      "app=cli",
    ]);
    expect(pair.code).toBe(0);
    const privateKey = createPrivateKey({
      key: b64(pair.json!["PrivateKeyPlaintext"] as string),
      format: "der",
      type: "pkcs8",
    });
    expect(
      createPublicKey(privateKey)
        .export({ type: "spki", format: "der" })
        .equals(b64(pair.json!["PublicKey"] as string)),
    ).toBe(true);
    writeFileSync(join(dir, "pk.bin"), b64(pair.json!["PrivateKeyCiphertextBlob"] as string));
    const dec = await runCli(
      server,
      ["kms", "decrypt", "--ciphertext-blob", "fileb://pk.bin", "--encryption-context", "app=cli"],
      { cwd: dir },
    );
    expect(
      b64(dec.json!["Plaintext"] as string).equals(
        b64(pair.json!["PrivateKeyPlaintext"] as string),
      ),
    ).toBe(true);
  });
});

describe("boto3", () => {
  it("runs every asymmetric and HMAC operation; the results check out locally", async () => {
    const signKey = await createKey("ECC_NIST_P256", "SIGN_VERIFY");
    const rsaKey = await createKey("RSA_2048", "ENCRYPT_DECRYPT");
    const macKey = await createKey("HMAC_256", "GENERATE_VERIFY_MAC");
    const symmetricKey = await createKey("SYMMETRIC_DEFAULT");
    const agreementKey = await createKey("ECC_NIST_P256", "KEY_AGREEMENT");
    const rsaPublic = createPublicKey({
      key: Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: rsaKey }))).PublicKey!),
      format: "der",
      type: "spki",
    });
    const secret = Buffer.from("boto3 decrypts what node encrypted");
    const localCiphertext = publicEncrypt(
      { key: rsaPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      secret,
    );
    const peer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const args = [
      join(REPO_ROOT, "test", "support", "asymmetric-boto3.py"),
      signKey,
      rsaKey,
      macKey,
      symmetricKey,
      agreementKey,
      localCiphertext.toString("base64"),
      peer.publicKey.export({ type: "spki", format: "der" }).toString("base64"),
    ];
    const { stdout, stderr, code } = await new Promise<{
      stdout: string;
      stderr: string;
      code: number;
    }>((resolve) =>
      execFile(
        "python3",
        args,
        { env: clientEnv(server), timeout: 60_000 },
        (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? Number(err.code ?? 1) : 0 }),
      ),
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as Record<string, string | boolean | string[] | null>;
    const message = b64(out["message"] as string);
    const publicKeyDer = b64(out["publicKey"] as string);
    const publicKey = createPublicKey({ key: publicKeyDer, format: "der", type: "spki" });
    expect(out).toMatchObject({
      signKeyId: signKey,
      verified: true,
      badSignature: "KMSInvalidSignatureException",
      shortDigest: "ValidationException",
      publicKeySpec: "ECC_NIST_P256",
      publicKeySigning: ["ECDSA_SHA_256"],
      rsaRoundTrip: true,
      rsaTooLarge: "ValidationException",
      macValid: true,
      flippedMac: "KMSInvalidMacException",
      wrongMacAlgorithm: "InvalidKeyUsageException",
      pairDecrypts: true,
    });
    expect(nodeVerify("sha256", message, publicKey, b64(out["signature"] as string))).toBe(true);
    expect(
      opensslDgstVerify(publicKeyDer, "ECDSA_SHA_256", message, b64(out["signature"] as string)),
    ).toBe(true);
    expect(nodeVerify("sha256", message, publicKey, b64(out["digestSignature"] as string))).toBe(
      true,
    );
    expect(b64(out["localDecrypted"] as string).equals(secret)).toBe(true);
    const pairPrivate = createPrivateKey({
      key: b64(out["pairPrivate"] as string),
      format: "der",
      type: "pkcs8",
    });
    expect(pairPrivate.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(
      createPublicKey(pairPrivate)
        .export({ type: "spki", format: "der" })
        .equals(b64(out["pairPublic"] as string)),
    ).toBe(true);
    const agreementPublic = createPublicKey({
      key: Buffer.from(
        (await kms.send(new GetPublicKeyCommand({ KeyId: agreementKey }))).PublicKey!,
      ),
      format: "der",
      type: "spki",
    });
    expect(
      b64(out["sharedSecret"] as string).equals(
        diffieHellman({ privateKey: peer.privateKey, publicKey: agreementPublic }),
      ),
    ).toBe(true);
  });
});
