/**
 * Imported key material (Origin EXTERNAL) driven by the SDK in fake time: import,
 * expiry on time (also across a restart), re-import of the same material only, and
 * the import token's rules (24 hours, one key).
 */
import {
  constants,
  createCipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  type AlgorithmSpec,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { DAY, FakeClock, newSite, startAt } from "./lifecycleSupport.js";

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
    const clock = new FakeClock(new Date(T0));
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
      server.timers.fire();
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
    const clock = new FakeClock(new Date(T0));
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
});
