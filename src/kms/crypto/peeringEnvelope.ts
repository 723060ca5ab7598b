/**
 * How key material crosses from one Keyhaven instance to another (multi-Region keys,
 * docs/multi-region.md): only sealed for the receiving instance's peering key pair,
 * never in plaintext and never under a secret the instances share.
 *
 * Envelope (JSON on the wire, every binary field base64):
 *
 *   EncryptedKey  RSA-OAEP (SHA-256, MGF1-SHA-256) of a fresh 32-byte key K, under the
 *                 receiver's peering public key (RSA 3072, SPKI DER)
 *   Items[i]      { Iv: 12 random bytes, Sealed: AES-256-GCM(K, item) ‖ 16-byte tag }
 *
 * Each item's AAD is the label the sender gives it (e.g. `material/<keyId>/<version>`),
 * so an item cannot be replayed as another key's or another version's material. K is
 * used for one envelope only and wiped after use.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from "node:crypto";
import type { RandomSource } from "./random.js";

export interface PeeringEnvelope {
  readonly EncryptedKey: string;
  readonly Items: readonly { readonly Iv: string; readonly Sealed: string }[];
}

export class PeeringEnvelopeError extends Error {
  override name = "PeeringEnvelopeError";
}

const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" } as const;
const TAG = 16;

/** A new peering key pair: RSA 3072; the private half as PKCS#8 DER (to be wrapped under the root key). */
export function generatePeeringKeyPair(): { publicKeyDer: Buffer; privateKeyDer: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 3072,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  });
  return { publicKeyDer: publicKey, privateKeyDer: privateKey };
}

/** Seals `items` (with their AAD labels) for the holder of the private half of `publicKeyDer`. */
export function sealForPeer(
  publicKeyDer: Buffer,
  items: readonly { readonly label: string; readonly bytes: Buffer }[],
  random: RandomSource,
): PeeringEnvelope {
  const publicKey = createPublicKey({ key: publicKeyDer, format: "der", type: "spki" });
  if (
    publicKey.asymmetricKeyType !== "rsa" ||
    (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 3072
  )
    throw new PeeringEnvelopeError(
      "the peer's peering key is not an RSA key of at least 3072 bits",
    );
  const k = random(32);
  try {
    const sealed = items.map(({ label, bytes }) => {
      const iv = random(12);
      const cipher = createCipheriv("aes-256-gcm", k, iv);
      cipher.setAAD(Buffer.from(label, "utf8"));
      const body = Buffer.concat([cipher.update(bytes), cipher.final(), cipher.getAuthTag()]);
      return { Iv: iv.toString("base64"), Sealed: body.toString("base64") };
    });
    return {
      EncryptedKey: publicEncrypt({ key: publicKey, ...OAEP }, k).toString("base64"),
      Items: sealed,
    };
  } finally {
    k.fill(0);
  }
}

/** Opens an envelope with this instance's peering private key; `labels[i]` must be item i's label. */
export function openFromPeer(
  privateKey: KeyObject,
  envelope: PeeringEnvelope,
  labels: readonly string[],
): Buffer[] {
  if (envelope.Items.length !== labels.length)
    throw new PeeringEnvelopeError("the envelope does not hold the items announced");
  let k: Buffer;
  try {
    k = privateDecrypt({ key: privateKey, ...OAEP }, Buffer.from(envelope.EncryptedKey, "base64"));
  } catch {
    throw new PeeringEnvelopeError("the envelope was not sealed for this instance");
  }
  try {
    return envelope.Items.map((item, i) => {
      const iv = Buffer.from(item.Iv, "base64");
      const body = Buffer.from(item.Sealed, "base64");
      if (iv.length !== 12 || body.length < TAG)
        throw new PeeringEnvelopeError("a sealed item is malformed");
      const decipher = createDecipheriv("aes-256-gcm", k, iv);
      decipher.setAAD(Buffer.from(labels[i]!, "utf8"));
      decipher.setAuthTag(body.subarray(body.length - TAG));
      try {
        return Buffer.concat([
          decipher.update(body.subarray(0, body.length - TAG)),
          decipher.final(),
        ]);
      } catch {
        throw new PeeringEnvelopeError("a sealed item failed authentication");
      }
    });
  } finally {
    k.fill(0);
  }
}
