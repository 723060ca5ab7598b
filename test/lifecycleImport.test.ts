/**
 * Imported key material (Origin EXTERNAL) driven by the SDK in fake time: import,
 * expiry on time (also across a restart), re-import of the same material only, and
 * the import token's rules (24 hours, one key); HMAC and RSA/ECC private keys too.
 */
import {
  constants,
  createCipheriv,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify,
} from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  SignCommand,
  ImportKeyMaterialCommand,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  type AlgorithmSpec,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { DAY, newSite, startAt } from "./lifecycleSupport.js";
import { ManualClock } from "./support/manualClock.js";

const T0 = Date.parse("2026-03-01T12:00:00Z");

/** GetParametersForImport, then wrap `material` as a client would. */
async function wrapFor(
  kms: KMSClient,
  keyId: string,
  material: Buffer,
  algorithm: AlgorithmSpec = "RSAES_OAEP_SHA_256",
) {
  const params = await kms.send(
    new GetParametersForImportCommand({
      KeyId: keyId,
      WrappingAlgorithm: algorithm,
      WrappingKeySpec: "RSA_2048",
    }),
  );
  const publicKey = createPublicKey({
    key: Buffer.from(params.PublicKey!),
    format: "der",
    type: "spki",
  });
  const oaepHash = algorithm.endsWith("SHA_1") ? "sha1" : "sha256";
  const oaep = (data: Buffer) =>
    publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  let encrypted: Buffer;
  if (algorithm.startsWith("RSAES")) {
    encrypted = oaep(material);
  } else {
    const aes = randomBytes(32);
    const kwp = createCipheriv("id-aes256-wrap-pad", aes, Buffer.from("a65959a6", "hex"));
    encrypted = Buffer.concat([oaep(aes), kwp.update(material), kwp.final()]);
  }
  return { params, encrypted };
}

describe("imported key material in fake time", () => {
  it("expires on time, across a restart, and comes back only with the same material", async () => {
    const site = newSite();
    const clock = new ManualClock(new Date(T0));
    let server = await startAt(site, clock);
    try {
      let kms = server.client;
      const created = await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }));
      const keyId = created.KeyMetadata!.KeyId!;
      const arn = created.KeyMetadata!.Arn!;
      expect(created.KeyMetadata).toMatchObject({
        Origin: "EXTERNAL",
        KeyState: "PendingImport",
        Enabled: false,
      });
      expect(
        await failure(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))),
      ).toMatchObject({ name: "KMSInvalidStateException", message: `${arn} is pending import.` });

      const material = randomBytes(32);
      const first = await wrapFor(kms, keyId, material, "RSA_AES_KEY_WRAP_SHA_256");
      expect(first.params.ParametersValidTo).toEqual(new Date(T0 + DAY));
      const validTo = new Date(T0 + 30 * DAY);
      const imported = await kms.send(
        new ImportKeyMaterialCommand({
          KeyId: keyId,
          ImportToken: first.params.ImportToken!,
          EncryptedKeyMaterial: first.encrypted,
          ExpirationModel: "KEY_MATERIAL_EXPIRES",
          ValidTo: validTo,
        }),
      );
      expect(imported.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
        KeyState: "Enabled",
        ExpirationModel: "KEY_MATERIAL_EXPIRES",
        ValidTo: validTo,
      });
      const blob = (
        await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("imported") }))
      ).CiphertextBlob!;
      expect(server.running.lifecycle.nextDue).toBe(validTo.getTime());
      // Imported keys do not rotate on demand without new pending material (AWS's message).
      expect(await failure(kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })))).toEqual(
        expect.objectContaining({
          name: "KMSInvalidStateException",
          message: `No available key material pending rotation for the key: ${arn}.`,
        }),
      );

      // A restart the day before: still usable.
      await server.stop();
      clock.set(validTo.getTime() - DAY);
      server = await startAt(site, clock);
      kms = server.client;
      const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
      expect(Buffer.from(out.Plaintext!).toString()).toBe("imported");

      // At ValidTo, while running: the loop's timer removes the material.
      clock.set(validTo.getTime());
      // Already unusable in the instant before the loop acts.
      expect(await failure(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).toMatchObject({
        name: "KMSInvalidStateException",
        message: `${arn} is pending import.`,
      });
      server.timers.advanceToNextTimer();
      await server.running.lifecycle.check();
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe(
        "PendingImport",
      );
      for (const call of [
        kms.send(new DecryptCommand({ CiphertextBlob: blob })),
        kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })),
      ])
        expect(await failure(call)).toMatchObject({
          name: "KMSInvalidStateException",
          message: `${arn} is pending import.`,
        });

      // Other material is refused; the same material brings the old ciphertext back.
      const other = await wrapFor(kms, keyId, randomBytes(32));
      expect(
        await failure(
          kms.send(
            new ImportKeyMaterialCommand({
              KeyId: keyId,
              ImportToken: other.params.ImportToken!,
              EncryptedKeyMaterial: other.encrypted,
              ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
            }),
          ),
        ),
      ).toMatchObject({ name: "IncorrectKeyMaterialException" });
      const same = await wrapFor(kms, keyId, material, "RSAES_OAEP_SHA_1");
      const again = await kms.send(
        new ImportKeyMaterialCommand({
          KeyId: keyId,
          ImportToken: same.params.ImportToken!,
          EncryptedKeyMaterial: same.encrypted,
          ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
        }),
      );
      expect(again.KeyMaterialId).toBe(imported.KeyMaterialId);
      const back = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
      expect(Buffer.from(back.Plaintext!).toString()).toBe("imported");
      const rotations = await kms.send(
        new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: "ALL_KEY_MATERIAL" }),
      );
      expect(rotations.Rotations).toEqual([
        expect.objectContaining({
          KeyMaterialId: imported.KeyMaterialId,
          KeyMaterialState: "CURRENT",
          ImportState: "IMPORTED",
          ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
        }),
      ]);

      // DeleteImportedKeyMaterial: gone at once, and for good across a restart.
      await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
      await server.stop();
      server = await startAt(site, clock);
      kms = server.client;
      expect(await failure(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).toMatchObject({
        name: "KMSInvalidStateException",
        message: `${arn} is pending import.`,
      });
    } finally {
      await server.stop();
    }
  });

  it("enforces the import token: 24 hours, this key only, untampered", async () => {
    const site = newSite();
    const clock = new ManualClock(new Date(T0));
    const server = await startAt(site, clock);
    try {
      const kms = server.client;
      const keyA = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!
        .KeyId!;
      const keyB = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!
        .KeyId!;
      const material = randomBytes(32);
      const { params, encrypted } = await wrapFor(kms, keyA, material);
      const importInto = (keyId: string, token: Uint8Array, blob = encrypted) =>
        kms.send(
          new ImportKeyMaterialCommand({
            KeyId: keyId,
            ImportToken: token,
            EncryptedKeyMaterial: blob,
            ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
          }),
        );
      expect(await failure(importInto(keyB, params.ImportToken!))).toMatchObject({
        name: "InvalidImportTokenException",
      });
      const tampered = Buffer.from(params.ImportToken!);
      tampered[tampered.length - 1]! ^= 1;
      expect(await failure(importInto(keyA, tampered))).toMatchObject({
        name: "InvalidImportTokenException",
      });
      const garbled = Buffer.from(encrypted);
      garbled[0]! ^= 1;
      expect(await failure(importInto(keyA, params.ImportToken!, garbled))).toMatchObject({
        name: "InvalidCiphertextException",
      });
      expect(
        await failure(
          kms.send(
            new ImportKeyMaterialCommand({
              KeyId: keyA,
              ImportToken: params.ImportToken!,
              EncryptedKeyMaterial: encrypted,
            }),
          ),
        ),
      ).toMatchObject({ name: "ValidationException" });
      clock.set(T0 + DAY);
      expect(await failure(importInto(keyA, params.ImportToken!))).toMatchObject({
        name: "ExpiredImportTokenException",
      });
      // A fresh token works.
      const fresh = await wrapFor(kms, keyA, material);
      await importInto(keyA, fresh.params.ImportToken!, fresh.encrypted);
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyA }))).KeyMetadata!.KeyState).toBe(
        "Enabled",
      );
    } finally {
      await server.stop();
    }
  });

  it("imports HMAC keys and RSA/ECC private keys, checked against the key spec", async () => {
    const server = await startAt(newSite(), new ManualClock(new Date(T0)));
    try {
      const kms = server.client;
      const externalKey = async (KeySpec: string, KeyUsage: string) =>
        (
          await kms.send(
            new CreateKeyCommand({
              Origin: "EXTERNAL",
              KeySpec: KeySpec as never,
              KeyUsage: KeyUsage as never,
            }),
          )
        ).KeyMetadata!.KeyId!;
      const importInto = async (keyId: string, material: Buffer, algorithm: AlgorithmSpec) => {
        const { params, encrypted } = await wrapFor(kms, keyId, material, algorithm);
        return kms.send(
          new ImportKeyMaterialCommand({
            KeyId: keyId,
            ImportToken: params.ImportToken!,
            EncryptedKeyMaterial: encrypted,
            ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
          }),
        );
      };

      // HMAC: 32..64 bytes for HMAC_256; the MAC is the one computed locally.
      const hmacKey = await externalKey("HMAC_256", "GENERATE_VERIFY_MAC");
      const hmacMaterial = randomBytes(48);
      await importInto(hmacKey, hmacMaterial, "RSAES_OAEP_SHA_256");
      const mac = await kms.send(
        new GenerateMacCommand({
          KeyId: hmacKey,
          Message: Buffer.from("hello"),
          MacAlgorithm: "HMAC_SHA_256",
        }),
      );
      expect(Buffer.from(mac.Mac!)).toEqual(
        createHmac("sha256", hmacMaterial).update("hello").digest(),
      );
      const shortKey = await externalKey("HMAC_256", "GENERATE_VERIFY_MAC");
      expect(
        await failure(importInto(shortKey, randomBytes(20), "RSAES_OAEP_SHA_256")),
      ).toMatchObject({ name: "IncorrectKeyMaterialException" });

      // ECC: a PKCS#8 private key; GetPublicKey and signatures match it.
      const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      const ecDer = ec.privateKey.export({ type: "pkcs8", format: "der" });
      const ecKey = await externalKey("ECC_NIST_P256", "SIGN_VERIFY");
      await importInto(ecKey, ecDer, "RSA_AES_KEY_WRAP_SHA_256");
      const publicKey = await kms.send(new GetPublicKeyCommand({ KeyId: ecKey }));
      expect(Buffer.from(publicKey.PublicKey!)).toEqual(
        ec.publicKey.export({ type: "spki", format: "der" }),
      );
      const signature = await kms.send(
        new SignCommand({
          KeyId: ecKey,
          Message: Buffer.from("signed"),
          SigningAlgorithm: "ECDSA_SHA_256",
        }),
      );
      expect(
        verify("sha256", Buffer.from("signed"), ec.publicKey, Buffer.from(signature.Signature!)),
      ).toBe(true);
      // A P-256 key is not P-384 material.
      const p384 = await externalKey("ECC_NIST_P384", "SIGN_VERIFY");
      expect(await failure(importInto(p384, ecDer, "RSA_AES_KEY_WRAP_SHA_1"))).toMatchObject({
        name: "IncorrectKeyMaterialException",
      });

      // RSA: ciphertext made locally with the public key decrypts in the service.
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const rsaKey = await externalKey("RSA_2048", "ENCRYPT_DECRYPT");
      await importInto(
        rsaKey,
        rsa.privateKey.export({ type: "pkcs8", format: "der" }),
        "RSA_AES_KEY_WRAP_SHA_256",
      );
      const ciphertext = publicEncrypt(
        { key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        Buffer.from("for the RSA key"),
      );
      const decrypted = await kms.send(
        new DecryptCommand({
          KeyId: rsaKey,
          CiphertextBlob: ciphertext,
          EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        }),
      );
      expect(Buffer.from(decrypted.Plaintext!).toString()).toBe("for the RSA key");
    } finally {
      await server.stop();
    }
  });
});
