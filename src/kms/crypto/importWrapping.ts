/**
 * Imported key material (BYOK), the crypto half: wrapping key pairs, unwrapping
 * what a client encrypted under them, the import token, and material fingerprints.
 *
 * EncryptedKeyMaterial, by WrappingAlgorithm (AWS's layouts):
 *
 *   RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256
 *     RSA-OAEP(material), MGF1 and label-less OAEP with the named hash;
 *     exactly the modulus length (256, 384 or 512 bytes).
 *
 *   RSA_AES_KEY_WRAP_SHA_1 / RSA_AES_KEY_WRAP_SHA_256
 *     RSA-OAEP(ephemeral AES key)  ‖  AES-KWP(material)
 *     the first modulus-length bytes carry a fresh 128/192/256-bit AES key under
 *     RSA-OAEP with the named hash; the rest is the material under AES Key Wrap with
 *     Padding (RFC 5649; OpenSSL `id-aes256-wrap-pad`, IV A65959A6).
 *
 * Import token, format version 1:
 *
 *   0x01 ‖ RootKey.wrap(JSON {t: token id, a: wrapping algorithm, s: wrapping key spec,
 *                             e: expiry in epoch ms}, context "import-token/<key id>")
 *
 * The token holds no key: the wrapping private key stays in the store, wrapped under
 * the root key, found by the token id. The root key's AEAD authenticates the token and
 * binds it to one key id, so a token for another key (or a forged one) fails to open.
 */
import {
  createDecipheriv,
  createHmac,
  constants,
  generateKeyPair,
  type KeyObject,
  createPrivateKey,
} from "node:crypto";
import * as nodeCrypto from "node:crypto";
import { promisify } from "node:util";
import { asymmetricSpecs } from "./asymmetric.js";
import { runPrivateKeyCall, type PrivateKeyCall } from "./privateKeyWorkers.js";
import { hmacSpecs } from "./hmac.js";

export const WRAPPING_KEY_BITS: Readonly<Record<string, number>> = {
  RSA_2048: 2048,
  RSA_3072: 3072,
  RSA_4096: 4096,
};

const OAEP_HASH: Readonly<Record<string, "sha1" | "sha256">> = {
  RSAES_OAEP_SHA_1: "sha1",
  RSAES_OAEP_SHA_256: "sha256",
  RSA_AES_KEY_WRAP_SHA_1: "sha1",
  RSA_AES_KEY_WRAP_SHA_256: "sha256",
};

export const SUPPORTED_WRAPPING_ALGORITHMS: readonly string[] = Object.keys(OAEP_HASH);

/** The wrapped material could not be recovered (wrong key, algorithm, or corrupted bytes). */
export class ImportUnwrapError extends Error {
  override name = "ImportUnwrapError";
}

export class ImportTokenError extends Error {
  override name = "ImportTokenError";
}

/** Unwrapped material that does not fit the key's spec; the message says what is expected. */
export class ImportedMaterialError extends Error {
  override name = "ImportedMaterialError";
}

/** AWS's accepted lengths of imported HMAC material, in bytes (inclusive). */
const HMAC_MATERIAL_BYTES: Readonly<Record<string, readonly [number, number]>> = {
  HMAC_224: [28, 64],
  HMAC_256: [32, 64],
  HMAC_384: [48, 128],
  HMAC_512: [64, 128],
};

/** Whether material of this key spec can be imported. */
export const importableKeySpec = (keySpec: string): boolean =>
  keySpec === "SYMMETRIC_DEFAULT" ||
  hmacSpecs[keySpec] !== undefined ||
  asymmetricSpecs[keySpec] !== undefined;

/**
 * Checks unwrapped material against the key spec, as AWS requires it, and returns the
 * bytes to store: symmetric → 32 bytes; HMAC → a raw key of AWS's length range;
 * RSA/ECC → a PKCS#8 DER private key of that exact spec, re-encoded by OpenSSL so the
 * same key always yields the same bytes (and the same KeyMaterialId).
 */
export function checkImportedMaterial(keySpec: string, material: Buffer): Buffer {
  if (keySpec === "SYMMETRIC_DEFAULT") {
    if (material.length !== 32)
      throw new ImportedMaterialError(
        `Key material for a SYMMETRIC_DEFAULT key must be 32 bytes (256 bits); got ${material.length} bytes.`,
      );
    return material;
  }
  const hmacRange = HMAC_MATERIAL_BYTES[keySpec];
  if (hmacRange) {
    const [min, max] = hmacRange;
    if (material.length < min || material.length > max)
      throw new ImportedMaterialError(
        `Key material for an ${keySpec} key must be ${min} to ${max} bytes; got ${material.length} bytes.`,
      );
    return material;
  }
  const spec = asymmetricSpecs[keySpec];
  if (!spec) throw new ImportedMaterialError(`Key material cannot be imported for ${keySpec}.`);
  const expected = `a PKCS#8 DER private key of key spec ${keySpec}`;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: material, format: "der", type: "pkcs8" });
  } catch {
    throw new ImportedMaterialError(`The key material is not ${expected}.`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  const fits =
    (spec.kind === "rsa" &&
      key.asymmetricKeyType === "rsa" &&
      details.modulusLength === spec.modulusBits) ||
    (spec.kind === "ec" && key.asymmetricKeyType === "ec" && details.namedCurve === spec.curve) ||
    (spec.kind === "ed25519" && key.asymmetricKeyType === "ed25519");
  if (!fits) throw new ImportedMaterialError(`The key material is not ${expected}.`);
  return key.export({ type: "pkcs8", format: "der" });
}

const generateKeyPairAsync = promisify(generateKeyPair);

export interface WrappingKeyPair {
  /** DER-encoded X.509 SubjectPublicKeyInfo, as GetParametersForImport returns it. */
  readonly publicKeyDer: Buffer;
  /** PKCS#8 DER; callers wrap it under the root key before it is stored. */
  readonly privateKeyDer: Buffer;
}

/** A fresh RSA wrapping key pair (async: 4096-bit generation takes a while). */
export async function generateWrappingKeyPair(spec: string): Promise<WrappingKeyPair> {
  const bits = WRAPPING_KEY_BITS[spec];
  if (bits === undefined) throw new Error(`unknown wrapping key spec ${spec}`);
  const { publicKey, privateKey } = await generateKeyPairAsync("rsa", {
    modulusLength: bits,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  });
  return { publicKeyDer: publicKey, privateKeyDer: privateKey };
}

/** Makes a private-key call: on a worker thread in `serve` (KeyService.privateKeyCall). */
export type PrivateKeyRunner = (call: PrivateKeyCall) => Promise<Buffer | undefined>;

const onThisThread: PrivateKeyRunner = (call) =>
  Promise.resolve(runPrivateKeyCall(nodeCrypto, call));

async function oaepDecrypt(
  run: PrivateKeyRunner,
  key: KeyObject,
  hash: "sha1" | "sha256",
  data: Buffer,
): Promise<Buffer> {
  const plain = await run({
    op: "privateDecrypt",
    key,
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: hash,
    data,
  });
  if (plain === undefined) throw new ImportUnwrapError("RSA-OAEP decryption failed");
  return plain;
}

const KWP_IV = Buffer.from("a65959a6", "hex");

/**
 * Recovers key material wrapped by a client with the public half of `privateKeyDer`. The
 * RSA-OAEP decryption (milliseconds for a 4096-bit key) is made by `run`: a worker
 * thread in `serve`, so an import never stalls the requests behind it.
 */
export async function unwrapKeyMaterial(
  privateKeyDer: Buffer,
  algorithm: string,
  encrypted: Uint8Array,
  run: PrivateKeyRunner = onThisThread,
): Promise<Buffer> {
  const hash = OAEP_HASH[algorithm];
  if (!hash) throw new ImportUnwrapError(`unsupported wrapping algorithm ${algorithm}`);
  const key = createPrivateKey({ key: privateKeyDer, format: "der", type: "pkcs8" });
  const modulusBytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  const data = Buffer.from(encrypted.buffer, encrypted.byteOffset, encrypted.byteLength);
  if (algorithm.startsWith("RSAES_OAEP")) {
    if (data.length !== modulusBytes) throw new ImportUnwrapError("wrong length for RSA-OAEP");
    return oaepDecrypt(run, key, hash, data);
  }
  if (data.length <= modulusBytes + 8) throw new ImportUnwrapError("too short for RSA-AES");
  const aesKey = await oaepDecrypt(run, key, hash, data.subarray(0, modulusBytes));
  try {
    if (![16, 24, 32].includes(aesKey.length))
      throw new ImportUnwrapError("the ephemeral AES key must be 128, 192 or 256 bits");
    const decipher = createDecipheriv(`id-aes${aesKey.length * 8}-wrap-pad`, aesKey, KWP_IV);
    try {
      return Buffer.concat([decipher.update(data.subarray(modulusBytes)), decipher.final()]);
    } catch {
      throw new ImportUnwrapError("AES key unwrap failed");
    }
  } finally {
    aesKey.fill(0);
  }
}

/**
 * AWS-style KeyMaterialId for material we hold in plaintext: HMAC-SHA256 keyed by the
 * material over a fixed label, 64 hex characters. It reveals nothing about the
 * material, yet two imports of the same material always get the same id.
 */
export const materialFingerprint = (material: Uint8Array): string =>
  createHmac("sha256", material).update("keyhaven/key-material-id/v1").digest("hex");

export interface ImportTokenClaims {
  readonly tokenId: string;
  readonly wrappingAlgorithm: string;
  readonly wrappingKeySpec: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export type Wrap = (plaintext: Buffer, context: string) => Promise<Buffer>;
export type Unwrap = (wrapped: Buffer, context: string) => Promise<Buffer>;

const TOKEN_V1 = 0x01;
const tokenContext = (keyId: string) => `import-token/${keyId}`;

export async function sealImportToken(
  wrap: Wrap,
  keyId: string,
  claims: ImportTokenClaims,
): Promise<Buffer> {
  const payload = Buffer.from(
    JSON.stringify({
      t: claims.tokenId,
      a: claims.wrappingAlgorithm,
      s: claims.wrappingKeySpec,
      e: claims.expiresAt,
    }),
  );
  return Buffer.concat([Buffer.of(TOKEN_V1), await wrap(payload, tokenContext(keyId))]);
}

/** Opens a token for `keyId`; ImportTokenError if it is malformed, forged, or for another key. */
export async function openImportToken(
  unwrap: Unwrap,
  keyId: string,
  token: Uint8Array,
): Promise<ImportTokenClaims> {
  const buf = Buffer.from(token.buffer, token.byteOffset, token.byteLength);
  if (buf.length < 2 || buf[0] !== TOKEN_V1)
    throw new ImportTokenError("not a Keyhaven import token");
  let payload: unknown;
  try {
    payload = JSON.parse((await unwrap(buf.subarray(1), tokenContext(keyId))).toString("utf8"));
  } catch {
    throw new ImportTokenError("the import token does not authenticate for this key");
  }
  const p = payload as Record<string, unknown>;
  if (
    typeof p["t"] !== "string" ||
    typeof p["a"] !== "string" ||
    typeof p["s"] !== "string" ||
    typeof p["e"] !== "number"
  )
    throw new ImportTokenError("malformed import token");
  return { tokenId: p["t"], wrappingAlgorithm: p["a"], wrappingKeySpec: p["s"], expiresAt: p["e"] };
}
