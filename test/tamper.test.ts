/**
 * Tampered ciphertext through the real server with the SDK (fast-check): any flipped byte
 * or any changed encryption context is refused, never decrypted.
 */
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { kmsClient, spawnServer, type SpawnedServer } from "./support/server.js";

let server: SpawnedServer;
let kms: KMSClient;
let keyArn: string;
let blob: Buffer;
const context = { tenant: "acme", purpose: "tamper-test", ab: "c" };
const plaintext = Buffer.from("the crown jewels");

// Byte 0 is the format version, 1..16 the key id, 17..20 the material version (ciphertext.ts).
const KEY_ID_BYTES = { from: 1, to: 17 };
// A format byte turned into the multi-Region format makes the same 16 bytes name another key,
// `mrk-` + their hex, as a changed key-id byte does.
const CIPHERTEXT_FORMAT_MRK = 0x02;

beforeAll(async () => {
  server = await spawnServer();
  kms = kmsClient(server);
  keyArn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  const out = await kms.send(
    new EncryptCommand({ KeyId: keyArn, Plaintext: plaintext, EncryptionContext: context }),
  );
  blob = Buffer.from(out.CiphertextBlob!);
  const dec = await kms.send(
    new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }),
  );
  expect(Buffer.from(dec.Plaintext!).equals(plaintext)).toBe(true);
});

afterAll(async () => {
  kms?.destroy();
  expect(await server?.stop()).toBe(0);
});

const sameContext = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(a).every(([k, v]) => Object.hasOwn(b, k) && b[k] === v);

describe("tampered ciphertext", () => {
  it("any flipped byte is InvalidCiphertextException (NotFoundException where it names another key)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 10_000 }),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (at, mask, nameTheKey) => {
          const index = at % blob.length;
          const tampered = Buffer.from(blob);
          tampered[index]! ^= mask;
          const err = await failure(
            kms.send(
              new DecryptCommand({
                CiphertextBlob: tampered,
                EncryptionContext: context,
                ...(nameTheKey && { KeyId: keyArn }),
              }),
            ),
          );
          const namesAnotherKey =
            (index >= KEY_ID_BYTES.from && index < KEY_ID_BYTES.to) ||
            (index === 0 && tampered[0] === CIPHERTEXT_FORMAT_MRK);
          const allowed = namesAnotherKey
            ? [nameTheKey ? "IncorrectKeyException" : "NotFoundException"]
            : ["InvalidCiphertextException"];
          expect(allowed).toContain(err.name);
          expect(err.status).toBeLessThan(500);
        },
      ),
      // Always tried: the format byte turned multi-Region, with and without the KeyId.
      {
        numRuns: 200,
        examples: [
          [0, 0x01 ^ CIPHERTEXT_FORMAT_MRK, false],
          [0, 0x01 ^ CIPHERTEXT_FORMAT_MRK, true],
        ],
      },
    );
  });

  it("any other encryption context is InvalidCiphertextException", async () => {
    const smallString = fc.string({ maxLength: 6 });
    const variant = fc.oneof(
      fc.dictionary(smallString, smallString, { maxKeys: 4 }),
      // near misses: one value changed, one pair dropped, one pair added, regrouped characters
      fc.constantFrom<Record<string, string>>(
        { ...context, ab: "C" },
        { tenant: "acme", purpose: "tamper-test" },
        { ...context, extra: "" },
        { tenant: "acme", purpose: "tamper-test", a: "bc" },
        { tenant: "acmepurpose", "": "tamper-test", ab: "c" },
        // JSON.parse makes "__proto__" an own key; it must count like any other key.
        JSON.parse('{"tenant":"acme","purpose":"tamper-test","ab":"c","__proto__":"x"}') as Record<
          string,
          string
        >,
      ),
    );
    await fc.assert(
      fc.asyncProperty(variant, async (other) => {
        fc.pre(!sameContext(other, context));
        const err = await failure(
          kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: other })),
        );
        expect(err.name).toBe("InvalidCiphertextException");
      }),
      { numRuns: 60 },
    );
  });
});
