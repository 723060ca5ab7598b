import { constants, generateKeyPairSync, privateDecrypt } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  contextAad,
  openEnvelope,
  parseEnvelope,
  readPublicKey,
  sealingContext,
  sealOffline,
  SealedValueError,
} from "./sealedValue.js";

const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const der = publicKey.export({ format: "der", type: "spki" });
const target = { namespace: "team-a", name: "db", entry: "password" };
/** What the key service's asymmetric Decrypt (RSAES_OAEP_SHA_256) does with the wrapped key. */
const unwrap = (wrapped: Buffer) =>
  privateDecrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    wrapped,
  );

describe("sealing context", () => {
  it("names the place per scope, with the documented keys", () => {
    expect(sealingContext("strict", target)).toEqual({
      "keyhaven.dev/namespace": "team-a",
      "keyhaven.dev/name": "db",
      "keyhaven.dev/entry": "password",
    });
    expect(sealingContext("namespace-wide", target)).toEqual({
      "keyhaven.dev/namespace": "team-a",
    });
    expect(sealingContext("cluster-wide", target)).toEqual({
      "keyhaven.dev/scope": "cluster-wide",
    });
  });

  it("the AAD is the context as sorted compact JSON", () => {
    expect(contextAad({ b: "2", a: "1" }).toString()).toBe('{"a":"1","b":"2"}');
  });
});

describe("offline envelope", () => {
  it("round-trips any value through RSA-OAEP + AES-GCM, and only with its own context", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.string(), (bytes, entry) => {
        const context = sealingContext("strict", { ...target, entry });
        const blob = sealOffline(readPublicKey(der), context, Buffer.from(bytes));
        const env = parseEnvelope(blob)!;
        expect(env.wrappedKey).toHaveLength(256);
        expect(openEnvelope(env, unwrap(env.wrappedKey), context)).toEqual(Buffer.from(bytes));
        const moved = sealingContext("strict", { ...target, entry: `${entry}x` });
        expect(() => openEnvelope(env, unwrap(env.wrappedKey), moved)).toThrow(SealedValueError);
      }),
      { numRuns: 25 },
    );
  });

  it("reads PEM as well as DER, refuses a non-RSA key, and tells envelopes from KMS ciphertexts", () => {
    const pem = publicKey.export({ format: "pem", type: "spki" }).toString();
    expect(readPublicKey(Buffer.from(pem)).asymmetricKeyType).toBe("rsa");
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    expect(() => readPublicKey(ec.export({ format: "der", type: "spki" }))).toThrow(/RSA/);
    expect(parseEnvelope(Buffer.from([1, 2, 3, 4]))).toBeUndefined();
    const blob = sealOffline(readPublicKey(der), {}, Buffer.from("x"));
    expect(() => parseEnvelope(blob.subarray(0, 40))).toThrow(/truncated/);
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1]! ^= 1;
    const env = parseEnvelope(tampered)!;
    expect(() => openEnvelope(env, unwrap(env.wrappedKey), {})).toThrow(SealedValueError);
  });
});
