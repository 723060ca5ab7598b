/**
 * Asymmetric and HMAC keys (issue 3) through @aws-sdk/client-kms against a real key
 * service on loopback. Every signature, ciphertext, key pair and shared secret is checked
 * independently: with OpenSSL on the GetPublicKey output, and with node:crypto.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  constants,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  verify as nodeVerify,
  type KeyObject,
} from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  ReEncryptCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
  type DataKeyPairSpec,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  type MacAlgorithmSpec,
  type SigningAlgorithmSpec,
} from "@aws-sdk/client-kms";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hashOf,
  opensslDerive,
  opensslDgstVerify,
  opensslEd25519Verify,
  opensslOaepEncrypt,
  opensslPkeyutlVerifyDigest,
} from "./support/asymmetric-openssl.js";
import { failure } from "./support/errors.js";
import { kmsClient, signedFetch, startInProcess, type InProcessServer } from "./support/server.js";

let server: InProcessServer;
let kms: KMSClient;

beforeAll(async () => {
  server = await startInProcess();
  kms = kmsClient(server);
});

afterAll(async () => {
  kms?.destroy();
  await server?.stop();
});

const keys = new Map<string, string>();
/** One key per (spec, usage), created once and shared by the tests. */
async function keyFor(spec: KeySpec, usage: KeyUsageType): Promise<string> {
  const id = `${spec}/${usage}`;
  let arn = keys.get(id);
  if (!arn) {
    const created = await kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: usage }));
    arn = created.KeyMetadata!.Arn!;
    keys.set(id, arn);
  }
  return arn;
}

async function publicKeyOf(keyId: string): Promise<{ der: Uint8Array; key: KeyObject }> {
  const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  return {
    der: out.PublicKey!,
    key: createPublicKey({ key: Buffer.from(out.PublicKey!), format: "der", type: "spki" }),
  };
}

const SIGNING: [KeySpec, SigningAlgorithmSpec][] = [
  ["RSA_2048", "RSASSA_PSS_SHA_256"],
  ["RSA_2048", "RSASSA_PSS_SHA_384"],
  ["RSA_2048", "RSASSA_PSS_SHA_512"],
  ["RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"],
  ["RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512"],
  ["ECC_NIST_P256", "ECDSA_SHA_256"],
  ["ECC_NIST_P384", "ECDSA_SHA_384"],
  ["ECC_NIST_P521", "ECDSA_SHA_512"],
  ["ECC_SECG_P256K1", "ECDSA_SHA_256"],
];

function nodeVerifies(
  publicKey: KeyObject,
  algorithm: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const key = algorithm.startsWith("RSASSA_PSS")
    ? {
        key: publicKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      }
    : publicKey;
  return nodeVerify(hashOf(algorithm), message, key, signature);
}

describe("CreateKey and DescribeKey", () => {
  it.each([
    [
      "RSA_2048",
      "ENCRYPT_DECRYPT",
      { EncryptionAlgorithms: ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] },
    ],
    [
      "RSA_4096",
      "SIGN_VERIFY",
      {
        SigningAlgorithms: [
          "RSASSA_PSS_SHA_256",
          "RSASSA_PSS_SHA_384",
          "RSASSA_PSS_SHA_512",
          "RSASSA_PKCS1_V1_5_SHA_256",
          "RSASSA_PKCS1_V1_5_SHA_384",
          "RSASSA_PKCS1_V1_5_SHA_512",
        ],
      },
    ],
    ["ECC_NIST_P384", "SIGN_VERIFY", { SigningAlgorithms: ["ECDSA_SHA_384"] }],
    ["ECC_NIST_P521", "KEY_AGREEMENT", { KeyAgreementAlgorithms: ["ECDH"] }],
    ["ECC_SECG_P256K1", "SIGN_VERIFY", { SigningAlgorithms: ["ECDSA_SHA_256"] }],
    [
      "ECC_NIST_EDWARDS25519",
      "SIGN_VERIFY",
      { SigningAlgorithms: ["ED25519_SHA_512", "ED25519_PH_SHA_512"] },
    ],
    ["HMAC_224", "GENERATE_VERIFY_MAC", { MacAlgorithms: ["HMAC_SHA_224"] }],
    ["HMAC_512", "GENERATE_VERIFY_MAC", { MacAlgorithms: ["HMAC_SHA_512"] }],
  ] as const)("%s %s lists exactly its algorithms", async (spec, usage, algorithms) => {
    const arn = await keyFor(spec, usage);
    const { KeyMetadata: md } = await kms.send(new DescribeKeyCommand({ KeyId: arn }));
    expect(md).toMatchObject({ KeySpec: spec, CustomerMasterKeySpec: spec, KeyUsage: usage });
    for (const field of [
      "EncryptionAlgorithms",
      "SigningAlgorithms",
      "MacAlgorithms",
      "KeyAgreementAlgorithms",
    ] as const) {
      expect(md![field]).toEqual((algorithms as Record<string, unknown>)[field]);
    }
  });

  it("requires KeyUsage for non-symmetric specs and refuses incompatible usages with AWS's messages", async () => {
    expect(await failure(kms.send(new CreateKeyCommand({ KeySpec: "RSA_2048" })))).toMatchObject({
      name: "ValidationException",
      message:
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
    });
    expect(
      await failure(
        kms.send(new CreateKeyCommand({ KeySpec: "RSA_2048", KeyUsage: "KEY_AGREEMENT" })),
      ),
    ).toMatchObject({
      name: "ValidationException",
      message: "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048",
    });
    expect(
      await failure(
        kms.send(new CreateKeyCommand({ KeySpec: "HMAC_256", KeyUsage: "SIGN_VERIFY" })),
      ),
    ).toMatchObject({ name: "ValidationException" });
    expect(
      await failure(
        kms.send(new CreateKeyCommand({ KeySpec: "ML_DSA_44", KeyUsage: "SIGN_VERIFY" })),
      ),
    ).toMatchObject({ name: "UnsupportedOperationException" });
  });
});

describe("Sign and Verify", () => {
  it.each(SIGNING)(
    "%s %s: RAW signatures verify with OpenSSL and node:crypto on GetPublicKey's key",
    async (spec, algorithm) => {
      const keyId = await keyFor(spec, "SIGN_VERIFY");
      const { der, key } = await publicKeyOf(keyId);
      const message = Buffer.from(`a message for ${algorithm} \u00e9\u0000`);
      const signed = await kms.send(
        new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: algorithm }),
      );
      expect(signed).toMatchObject({ KeyId: keyId, SigningAlgorithm: algorithm });
      const signature = signed.Signature!;
      if (algorithm.startsWith("ECDSA"))
        expect(signature[0]).toBe(0x30); // DER, as AWS returns
      else expect(signature.length).toBe(Number(spec.slice(4)) / 8);
      expect(opensslDgstVerify(der, algorithm, message, signature)).toBe(true);
      expect(nodeVerifies(key, algorithm, message, signature)).toBe(true);
      const verified = await kms.send(
        new VerifyCommand({
          KeyId: keyId,
          Message: message,
          Signature: signature,
          SigningAlgorithm: algorithm,
        }),
      );
      expect(verified).toEqual(
        expect.objectContaining({
          KeyId: keyId,
          SignatureValid: true,
          SigningAlgorithm: algorithm,
        }),
      );
    },
  );

  it.each(SIGNING)(
    "%s %s: DIGEST signatures are over the given digest, unhashed (OpenSSL pkeyutl), and equal RAW signatures of the message",
    async (spec, algorithm) => {
      const keyId = await keyFor(spec, "SIGN_VERIFY");
      const { der, key } = await publicKeyOf(keyId);
      const message = Buffer.from(`digest me with ${algorithm}`);
      const digest = createHash(hashOf(algorithm)).update(message).digest();
      const { Signature } = await kms.send(
        new SignCommand({
          KeyId: keyId,
          Message: digest,
          MessageType: "DIGEST",
          SigningAlgorithm: algorithm,
        }),
      );
      expect(opensslPkeyutlVerifyDigest(der, algorithm, digest, Signature!)).toBe(true);
      expect(nodeVerifies(key, algorithm, message, Signature!)).toBe(true);
      // A RAW Verify of the message accepts the DIGEST signature, and vice versa.
      await kms.send(
        new VerifyCommand({
          KeyId: keyId,
          Message: message,
          Signature: Signature!,
          SigningAlgorithm: algorithm,
        }),
      );
      await kms.send(
        new VerifyCommand({
          KeyId: keyId,
          Message: digest,
          MessageType: "DIGEST",
          Signature: Signature!,
          SigningAlgorithm: algorithm,
        }),
      );
    },
  );

  it("a signature with any bit flipped, or another message, is KMSInvalidSignatureException with an empty message", async () => {
    const keyId = await keyFor("ECC_NIST_P256", "SIGN_VERIFY");
    const message = Buffer.from("flip me");
    const { Signature } = await kms.send(
      new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: "ECDSA_SHA_256" }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(Signature!.length * 8 - 1), async (bit) => {
        const bad = Buffer.from(Signature!);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const f = await failure(
          kms.send(
            new VerifyCommand({
              KeyId: keyId,
              Message: message,
              Signature: bad,
              SigningAlgorithm: "ECDSA_SHA_256",
            }),
          ),
        );
        expect(f).toMatchObject({ name: "KMSInvalidSignatureException", status: 400 });
      }),
      { numRuns: 25 },
    );
    expect(
      await failure(
        kms.send(
          new VerifyCommand({
            KeyId: keyId,
            Message: Buffer.from("flip mE"),
            Signature: Signature!,
            SigningAlgorithm: "ECDSA_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({ name: "KMSInvalidSignatureException" });
  });

  it("RSA signatures that do not verify are refused the same way (PSS and PKCS#1, RAW and DIGEST)", async () => {
    const keyId = await keyFor("RSA_2048", "SIGN_VERIFY");
    for (const algorithm of ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"] as const) {
      const { Signature } = await kms.send(
        new SignCommand({ KeyId: keyId, Message: Buffer.from("m"), SigningAlgorithm: algorithm }),
      );
      const bad = Buffer.from(Signature!);
      bad[100]! ^= 0x10;
      for (const [message, type] of [
        [Buffer.from("m"), "RAW"],
        [createHash("sha256").update("m").digest(), "DIGEST"],
      ] as const) {
        expect(
          await failure(
            kms.send(
              new VerifyCommand({
                KeyId: keyId,
                Message: message,
                MessageType: type,
                Signature: bad,
                SigningAlgorithm: algorithm,
              }),
            ),
          ),
        ).toMatchObject({ name: "KMSInvalidSignatureException" });
      }
    }
  });

  it("checks digest length, algorithm and key usage with AWS's messages", async () => {
    const ecc = await keyFor("ECC_NIST_P256", "SIGN_VERIFY");
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: ecc,
            Message: Buffer.alloc(31),
            MessageType: "DIGEST",
            SigningAlgorithm: "ECDSA_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "ValidationException",
      message: "Digest is invalid length for algorithm ECDSA_SHA_256.",
    });
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: ecc,
            Message: Buffer.from("x"),
            SigningAlgorithm: "ECDSA_SHA_384",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.",
    });
    const enc = await keyFor("RSA_2048", "ENCRYPT_DECRYPT");
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: enc,
            Message: Buffer.from("x"),
            SigningAlgorithm: "RSASSA_PSS_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: `${enc} key usage is ENCRYPT_DECRYPT which is not valid for Sign.`,
    });
    expect(
      await failure(kms.send(new EncryptCommand({ KeyId: ecc, Plaintext: Buffer.from("x") }))),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: `${ecc} key usage is SIGN_VERIFY which is not valid for Encrypt.`,
    });
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: symmetric,
            Message: Buffer.from("x"),
            SigningAlgorithm: "ECDSA_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: `${symmetric} key usage is ENCRYPT_DECRYPT which is not valid for Sign.`,
    });
  });

  it("messages up to 4096 bytes sign; longer ones are refused by validation", async () => {
    const keyId = await keyFor("ECC_NIST_P256", "SIGN_VERIFY");
    const { der } = await publicKeyOf(keyId);
    const message = Buffer.alloc(4096, 7);
    const { Signature } = await kms.send(
      new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: "ECDSA_SHA_256" }),
    );
    expect(opensslDgstVerify(der, "ECDSA_SHA_256", message, Signature!)).toBe(true);
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: keyId,
            Message: Buffer.alloc(4097),
            SigningAlgorithm: "ECDSA_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({ name: "ValidationException" });
  });

  it("Ed25519: ED25519_SHA_512 with RAW verifies with OpenSSL; ED25519_PH_SHA_512 is UnsupportedOperationException", async () => {
    const keyId = await keyFor("ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    const { der, key } = await publicKeyOf(keyId);
    expect(der.length).toBe(44);
    const message = Buffer.from("an Ed25519 message");
    const { Signature } = await kms.send(
      new SignCommand({
        KeyId: keyId,
        Message: message,
        MessageType: "RAW",
        SigningAlgorithm: "ED25519_SHA_512",
      }),
    );
    expect(Signature!.length).toBe(64);
    expect(nodeVerify(null, message, key, Signature!)).toBe(true);
    expect(opensslEd25519Verify(der, message, Signature!)).toBe(true);
    await kms.send(
      new VerifyCommand({
        KeyId: keyId,
        Message: message,
        Signature: Signature!,
        SigningAlgorithm: "ED25519_SHA_512",
      }),
    );
    const sign = (algorithm: SigningAlgorithmSpec, type: "RAW" | "DIGEST", msg: Uint8Array) =>
      failure(
        kms.send(
          new SignCommand({
            KeyId: keyId,
            Message: msg,
            MessageType: type,
            SigningAlgorithm: algorithm,
          }),
        ),
      );
    expect(await sign("ED25519_SHA_512", "DIGEST", Buffer.alloc(64))).toMatchObject({
      name: "ValidationException",
      message: "Message type DIGEST is incompatible with algorithm ED25519_SHA_512.",
    });
    expect(await sign("ED25519_PH_SHA_512", "RAW", message)).toMatchObject({
      name: "ValidationException",
      message: "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512.",
    });
    expect(await sign("ED25519_PH_SHA_512", "DIGEST", Buffer.alloc(20))).toMatchObject({
      name: "ValidationException",
      message: "Digest is invalid length for algorithm ED25519_PH_SHA_512.",
    });
    const ph = await sign(
      "ED25519_PH_SHA_512",
      "DIGEST",
      createHash("sha512").update(message).digest(),
    );
    expect(ph.name).toBe("UnsupportedOperationException");
    expect(ph.message).toMatch(/ED25519_PH_SHA_512.*Use ED25519_SHA_512/);
    expect(await sign("ECDSA_SHA_512", "RAW", message)).toMatchObject({
      name: "InvalidKeyUsageException",
      message: "Algorithm ECDSA_SHA_512 is incompatible with key spec ECC_NIST_EDWARDS25519.",
    });
  });

  it("a disabled key cannot sign", async () => {
    const keyId = (
      await kms.send(new CreateKeyCommand({ KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }))
    ).KeyMetadata!.Arn!;
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect(
      await failure(
        kms.send(
          new SignCommand({
            KeyId: keyId,
            Message: Buffer.from("x"),
            SigningAlgorithm: "ECDSA_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({ name: "DisabledException", message: `${keyId} is disabled.` });
  });
});

describe("failures on the wire", () => {
  it("KMSInvalidSignatureException and KMSInvalidMacException carry an empty message, as AWS sends them", async () => {
    // The SDK renders an empty message as "UnknownError", so read the raw response.
    const signing = await keyFor("ECC_NIST_P256", "SIGN_VERIFY");
    const mac = await keyFor("HMAC_256", "GENERATE_VERIFY_MAC");
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const badSignature = await signedFetch(server, {
      target: "Verify",
      body: JSON.stringify({
        KeyId: signing,
        Message: b64("m"),
        Signature: b64("not a signature"),
        SigningAlgorithm: "ECDSA_SHA_256",
      }),
    });
    expect(badSignature.status).toBe(400);
    expect(badSignature.json).toEqual({ __type: "KMSInvalidSignatureException", message: "" });
    const badMac = await signedFetch(server, {
      target: "VerifyMac",
      body: JSON.stringify({
        KeyId: mac,
        Message: b64("m"),
        Mac: b64("0123456789abcdef0123456789abcdef"),
        MacAlgorithm: "HMAC_SHA_256",
      }),
    });
    expect(badMac.status).toBe(400);
    expect(badMac.json).toEqual({ __type: "KMSInvalidMacException", message: "" });
  });
});

describe("GetPublicKey", () => {
  it("returns DER SubjectPublicKeyInfo with the metadata fields AWS returns", async () => {
    const keyId = await keyFor("RSA_2048", "ENCRYPT_DECRYPT");
    const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(out).toMatchObject({
      KeyId: keyId,
      KeySpec: "RSA_2048",
      CustomerMasterKeySpec: "RSA_2048",
      KeyUsage: "ENCRYPT_DECRYPT",
      EncryptionAlgorithms: ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
    });
    expect(out.SigningAlgorithms).toBeUndefined();
    const key = createPublicKey({ key: Buffer.from(out.PublicKey!), format: "der", type: "spki" });
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
  });

  it("is UnsupportedOperationException for symmetric and HMAC keys", async () => {
    for (const id of [
      (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!,
      await keyFor("HMAC_256", "GENERATE_VERIFY_MAC"),
    ]) {
      expect(await failure(kms.send(new GetPublicKeyCommand({ KeyId: id })))).toMatchObject({
        name: "UnsupportedOperationException",
      });
    }
  });
});

describe("Encrypt and Decrypt with RSA keys", () => {
  it.each([
    ["RSA_2048", "RSAES_OAEP_SHA_256", 190],
    ["RSA_2048", "RSAES_OAEP_SHA_1", 214],
    ["RSA_3072", "RSAES_OAEP_SHA_256", 318],
    ["RSA_4096", "RSAES_OAEP_SHA_1", 470],
  ] as const)(
    "%s %s: up to %i bytes; one more is refused with AWS's message",
    async (spec, algorithm, max) => {
      const keyId = await keyFor(spec, "ENCRYPT_DECRYPT");
      const plaintext = Buffer.alloc(max, 0xab);
      const enc = await kms.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionAlgorithm: algorithm }),
      );
      expect(enc).toMatchObject({ KeyId: keyId, EncryptionAlgorithm: algorithm });
      expect(enc.CiphertextBlob!.length).toBe(Number(spec.slice(4)) / 8);
      const dec = await kms.send(
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: enc.CiphertextBlob!,
          EncryptionAlgorithm: algorithm,
        }),
      );
      expect(Buffer.from(dec.Plaintext!).equals(plaintext)).toBe(true);
      expect(dec).toMatchObject({ KeyId: keyId, EncryptionAlgorithm: algorithm });
      expect(
        await failure(
          kms.send(
            new EncryptCommand({
              KeyId: keyId,
              Plaintext: Buffer.alloc(max + 1),
              EncryptionAlgorithm: algorithm,
            }),
          ),
        ),
      ).toMatchObject({
        name: "ValidationException",
        message: `Algorithm ${algorithm} and key spec ${spec} cannot encrypt data larger than ${max} bytes.`,
      });
    },
  );

  it("data encrypted locally with the public key (node:crypto and OpenSSL) decrypts in the server", async () => {
    const keyId = await keyFor("RSA_2048", "ENCRYPT_DECRYPT");
    const { der, key } = await publicKeyOf(keyId);
    const secret = Buffer.from("envelope secret \u2603");
    for (const [algorithm, hash] of [
      ["RSAES_OAEP_SHA_256", "sha256"],
      ["RSAES_OAEP_SHA_1", "sha1"],
    ] as const) {
      const local = publicEncrypt(
        { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        secret,
      );
      const viaOpenssl = opensslOaepEncrypt(der, hash, secret);
      for (const blob of [local, viaOpenssl]) {
        const dec = await kms.send(
          new DecryptCommand({
            KeyId: keyId,
            CiphertextBlob: blob,
            EncryptionAlgorithm: algorithm,
          }),
        );
        expect(Buffer.from(dec.Plaintext!).equals(secret)).toBe(true);
      }
      // The other OAEP hash does not decrypt it.
      const other = algorithm === "RSAES_OAEP_SHA_256" ? "RSAES_OAEP_SHA_1" : "RSAES_OAEP_SHA_256";
      expect(
        await failure(
          kms.send(
            new DecryptCommand({ KeyId: keyId, CiphertextBlob: local, EncryptionAlgorithm: other }),
          ),
        ),
      ).toMatchObject({ name: "InvalidCiphertextException" });
    }
  });

  it("AWS's errors: default algorithm, encryption context, missing algorithm on Decrypt", async () => {
    const keyId = await keyFor("RSA_2048", "ENCRYPT_DECRYPT");
    expect(
      await failure(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.",
    });
    expect(
      await failure(
        kms.send(
          new EncryptCommand({
            KeyId: keyId,
            Plaintext: Buffer.from("x"),
            EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
            EncryptionContext: { a: "b" },
          }),
        ),
      ),
    ).toMatchObject({ name: "ValidationException" });
    const { CiphertextBlob } = await kms.send(
      new EncryptCommand({
        KeyId: keyId,
        Plaintext: Buffer.from("x"),
        EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
      }),
    );
    expect(
      await failure(kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob }))),
    ).toMatchObject({ name: "InvalidCiphertextException" });
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    expect(
      await failure(
        kms.send(
          new EncryptCommand({
            KeyId: symmetric,
            Plaintext: Buffer.from("x"),
            EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT.",
    });
    expect(
      await failure(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256" }))),
    ).toMatchObject({ name: "InvalidKeyUsageException" });
  });

  it("ReEncrypt moves ciphertext from a symmetric key to an RSA key and back", async () => {
    const rsa = await keyFor("RSA_3072", "ENCRYPT_DECRYPT");
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    const secret = Buffer.from("moving between key types");
    const sym = await kms.send(
      new EncryptCommand({ KeyId: symmetric, Plaintext: secret, EncryptionContext: { k: "v" } }),
    );
    const toRsa = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: sym.CiphertextBlob!,
        SourceEncryptionContext: { k: "v" },
        DestinationKeyId: rsa,
        DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
      }),
    );
    expect(toRsa).toMatchObject({
      KeyId: rsa,
      SourceKeyId: symmetric,
      SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
    });
    expect(toRsa.CiphertextBlob!.length).toBe(384);
    const back = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: toRsa.CiphertextBlob!,
        SourceKeyId: rsa,
        SourceEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        DestinationKeyId: symmetric,
        DestinationEncryptionContext: { k: "w" },
      }),
    );
    expect(back).toMatchObject({
      KeyId: symmetric,
      SourceKeyId: rsa,
      SourceEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
      DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    });
    const dec = await kms.send(
      new DecryptCommand({ CiphertextBlob: back.CiphertextBlob!, EncryptionContext: { k: "w" } }),
    );
    expect(Buffer.from(dec.Plaintext!).equals(secret)).toBe(true);
  });
});

describe("GenerateDataKeyPair", () => {
  const SPECS: DataKeyPairSpec[] = [
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
  ];

  it.each(SPECS)(
    "%s: the private key matches the public key, and its ciphertext decrypts to it under the context",
    async (spec) => {
      const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
      const context = { purpose: "data-key-pair", spec };
      const pair = await kms.send(
        new GenerateDataKeyPairCommand({
          KeyId: keyId,
          KeyPairSpec: spec,
          EncryptionContext: context,
        }),
      );
      expect(pair).toMatchObject({ KeyId: keyId, KeyPairSpec: spec });
      const privateKey = createPrivateKey({
        key: Buffer.from(pair.PrivateKeyPlaintext!),
        format: "der",
        type: "pkcs8",
      });
      const derivedPublic = createPublicKey(privateKey).export({ type: "spki", format: "der" });
      expect(derivedPublic.equals(Buffer.from(pair.PublicKey!))).toBe(true);
      const dec = await kms.send(
        new DecryptCommand({
          CiphertextBlob: pair.PrivateKeyCiphertextBlob!,
          EncryptionContext: context,
        }),
      );
      expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(pair.PrivateKeyPlaintext!))).toBe(true);
      expect(
        await failure(
          kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob! })),
        ),
      ).toMatchObject({ name: "InvalidCiphertextException" });
    },
  );

  it("WithoutPlaintext: the encrypted private key decrypts to a key matching the returned public key", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    const pair = await kms.send(
      new GenerateDataKeyPairWithoutPlaintextCommand({
        KeyId: keyId,
        KeyPairSpec: "ECC_NIST_P256",
      }),
    );
    expect((pair as { PrivateKeyPlaintext?: unknown }).PrivateKeyPlaintext).toBeUndefined();
    const dec = await kms.send(
      new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob! }),
    );
    const privateKey = createPrivateKey({
      key: Buffer.from(dec.Plaintext!),
      format: "der",
      type: "pkcs8",
    });
    expect(
      createPublicKey(privateKey)
        .export({ type: "spki", format: "der" })
        .equals(Buffer.from(pair.PublicKey!)),
    ).toBe(true);
  });

  it("needs a symmetric encryption key; SM2 is not offered", async () => {
    const rsa = await keyFor("RSA_2048", "ENCRYPT_DECRYPT");
    expect(
      await failure(
        kms.send(new GenerateDataKeyPairCommand({ KeyId: rsa, KeyPairSpec: "ECC_NIST_P256" })),
      ),
    ).toMatchObject({ name: "InvalidKeyUsageException" });
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    expect(
      await failure(
        kms.send(new GenerateDataKeyPairCommand({ KeyId: symmetric, KeyPairSpec: "SM2" })),
      ),
    ).toMatchObject({ name: "UnsupportedOperationException" });
  });
});

describe("GenerateMac and VerifyMac", () => {
  const MACS: [KeySpec, MacAlgorithmSpec, string, number][] = [
    ["HMAC_224", "HMAC_SHA_224", "sha224", 28],
    ["HMAC_256", "HMAC_SHA_256", "sha256", 32],
    ["HMAC_384", "HMAC_SHA_384", "sha384", 48],
    ["HMAC_512", "HMAC_SHA_512", "sha512", 64],
  ];

  it.each(MACS)(
    "%s: the MAC is the standard HMAC of the key material, and VerifyMac accepts it",
    async (spec, algorithm, hash, length) => {
      const keyId = await keyFor(spec, "GENERATE_VERIFY_MAC");
      const message = Buffer.from(`mac this with ${algorithm}`);
      const out = await kms.send(
        new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: algorithm }),
      );
      expect(out).toMatchObject({ KeyId: keyId, MacAlgorithm: algorithm });
      expect(out.Mac!.length).toBe(length);
      // Material cannot be imported into HMAC keys yet, so read it from the in-process
      // service to prove the MAC is plain HMAC (RFC 2104) of the key's material.
      const service = server.running.service;
      const record = (await service.store.getKey(keyId.split("/")[1]!))!;
      const material = (await service.symmetricKey(record, 1)).export();
      expect(material.length).toBe(length);
      expect(
        Buffer.from(out.Mac!).equals(createHmac(hash, material).update(message).digest()),
      ).toBe(true);
      const verified = await kms.send(
        new VerifyMacCommand({
          KeyId: keyId,
          Message: message,
          Mac: out.Mac!,
          MacAlgorithm: algorithm,
        }),
      );
      expect(verified).toMatchObject({ KeyId: keyId, MacValid: true, MacAlgorithm: algorithm });
    },
  );

  it("rejects any flipped bit, a changed message, or a truncated MAC with KMSInvalidMacException", async () => {
    const keyId = await keyFor("HMAC_256", "GENERATE_VERIFY_MAC");
    const message = Buffer.from("authentic");
    const { Mac } = await kms.send(
      new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256" }),
    );
    const verifyFails = async (msg: Uint8Array, mac: Uint8Array) =>
      failure(
        kms.send(
          new VerifyMacCommand({
            KeyId: keyId,
            Message: msg,
            Mac: mac,
            MacAlgorithm: "HMAC_SHA_256",
          }),
        ),
      );
    for (let bit = 0; bit < Mac!.length * 8; bit += 7) {
      const bad = Buffer.from(Mac!);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(await verifyFails(message, bad)).toMatchObject({
        name: "KMSInvalidMacException",
        status: 400,
      });
    }
    expect((await verifyFails(Buffer.from("authentiC"), Mac!)).name).toBe("KMSInvalidMacException");
    expect((await verifyFails(message, Mac!.subarray(0, 31))).name).toBe("KMSInvalidMacException");
  });

  it("refuses a MAC algorithm of another spec and non-MAC keys with AWS's messages", async () => {
    const keyId = await keyFor("HMAC_224", "GENERATE_VERIFY_MAC");
    expect(
      await failure(
        kms.send(
          new GenerateMacCommand({
            KeyId: keyId,
            Message: Buffer.from("x"),
            MacAlgorithm: "HMAC_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.",
    });
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    expect(
      await failure(
        kms.send(
          new GenerateMacCommand({
            KeyId: symmetric,
            Message: Buffer.from("x"),
            MacAlgorithm: "HMAC_SHA_256",
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: `${symmetric} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.`,
    });
    expect(
      await failure(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))),
    ).toMatchObject({ name: "InvalidKeyUsageException" });
  });
});

describe("DeriveSharedSecret", () => {
  it.each([
    ["ECC_NIST_P256", "prime256v1"],
    ["ECC_NIST_P384", "secp384r1"],
    ["ECC_NIST_P521", "secp521r1"],
  ] as const)(
    "%s: equals the ECDH secret computed locally (node:crypto and OpenSSL)",
    async (spec, curve) => {
      const keyId = await keyFor(spec, "KEY_AGREEMENT");
      const { key: serverPublic, der: serverDer } = await publicKeyOf(keyId);
      const local = generateKeyPairSync("ec", { namedCurve: curve });
      const out = await kms.send(
        new DeriveSharedSecretCommand({
          KeyId: keyId,
          KeyAgreementAlgorithm: "ECDH",
          PublicKey: local.publicKey.export({ type: "spki", format: "der" }),
        }),
      );
      expect(out).toMatchObject({
        KeyId: keyId,
        KeyAgreementAlgorithm: "ECDH",
        KeyOrigin: "AWS_KMS",
      });
      const expected = diffieHellman({ privateKey: local.privateKey, publicKey: serverPublic });
      expect(Buffer.from(out.SharedSecret!).equals(expected)).toBe(true);
      const pem = local.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
      expect(opensslDerive(pem, serverDer).equals(expected)).toBe(true);
    },
  );

  it("refuses a peer key on another curve, garbage, and keys that are not KEY_AGREEMENT", async () => {
    const keyId = await keyFor("ECC_NIST_P256", "KEY_AGREEMENT");
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    for (const PublicKey of [p384, Buffer.from("not a key")]) {
      expect(
        await failure(
          kms.send(
            new DeriveSharedSecretCommand({
              KeyId: keyId,
              KeyAgreementAlgorithm: "ECDH",
              PublicKey,
            }),
          ),
        ),
      ).toMatchObject({ name: "ValidationException" });
    }
    const signing = await keyFor("ECC_NIST_P256", "SIGN_VERIFY");
    const peer = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    expect(
      await failure(
        kms.send(
          new DeriveSharedSecretCommand({
            KeyId: signing,
            KeyAgreementAlgorithm: "ECDH",
            PublicKey: peer,
          }),
        ),
      ),
    ).toMatchObject({
      name: "InvalidKeyUsageException",
      message: `${signing} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.`,
    });
  });
});

describe("logs and audit lines", () => {
  it("never contain private keys, shared secrets, MAC keys or signed messages", async () => {
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    const pair = await kms.send(
      new GenerateDataKeyPairCommand({ KeyId: symmetric, KeyPairSpec: "ECC_NIST_P256" }),
    );
    const agreement = await keyFor("ECC_NIST_P256", "KEY_AGREEMENT");
    const peer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const shared = await kms.send(
      new DeriveSharedSecretCommand({
        KeyId: agreement,
        KeyAgreementAlgorithm: "ECDH",
        PublicKey: peer.publicKey.export({ type: "spki", format: "der" }),
      }),
    );
    const message = Buffer.from("a confidential message that is signed");
    await kms.send(
      new SignCommand({
        KeyId: await keyFor("ECC_NIST_P256", "SIGN_VERIFY"),
        Message: message,
        SigningAlgorithm: "ECDSA_SHA_256",
      }),
    );
    const macKey = await keyFor("HMAC_256", "GENERATE_VERIFY_MAC");
    await kms.send(
      new GenerateMacCommand({ KeyId: macKey, Message: message, MacAlgorithm: "HMAC_SHA_256" }),
    );
    const service = server.running.service;
    const macMaterial = (
      await service.symmetricKey((await service.store.getKey(macKey.split("/")[1]!))!, 1)
    ).export();
    const output = server.output();
    expect(output).toContain(symmetric); // the audit lines are there …
    for (const secret of [
      Buffer.from(pair.PrivateKeyPlaintext!),
      Buffer.from(shared.SharedSecret!),
      message,
      macMaterial,
    ]) {
      // … but no secret, in base64, hex or text.
      expect(output).not.toContain(secret.toString("base64"));
      expect(output).not.toContain(secret.toString("hex"));
    }
    expect(output).not.toContain(message.toString());
  });
});

describe("key material at rest", () => {
  it("private keys and HMAC keys are stored only wrapped under the root key", async () => {
    const service = server.running.service;
    for (const [spec, usage] of [
      ["ECC_NIST_P256", "SIGN_VERIFY"],
      ["RSA_2048", "ENCRYPT_DECRYPT"],
      ["HMAC_256", "GENERATE_VERIFY_MAC"],
    ] as const) {
      const arn = await keyFor(spec, usage);
      const keyId = arn.split("/")[1]!;
      const record = (await service.store.getMaterial(keyId, 1))!;
      const key = (await service.store.getKey(keyId))!;
      const material =
        spec === "HMAC_256"
          ? (await service.symmetricKey(key, 1)).export()
          : (await service.keyPair(key)).privateKey.export({ type: "pkcs8", format: "der" });
      expect(record.wrapped.includes(material)).toBe(false);
      expect(record.wrapped.includes(material.subarray(material.length - 16))).toBe(false);
    }
  });
});
