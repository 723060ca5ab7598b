/**
 * This instance's peering key pair (docs/multi-region.md): the RSA key peers seal key
 * material to when they replicate a multi-Region key here. Made on first use; the private
 * half is kept in the store wrapped under the root key (like the STS session key), the
 * public half in the clear.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { generatePeeringKeyPair } from "../crypto/peeringEnvelope.js";
import type { RootKey } from "../rootkey/rootKey.js";
import type { KeyStore } from "../store/keyStore.js";

/** Where the wrapped private key is kept, and its root-key context (keyhaven rewrap reads both). */
export const PEERING_KEY = { meta: "peeringPrivateKey", context: "keyhaven/peering-key" } as const;
const PUBLIC_META = "peeringPublicKey";

export interface PeeringKey {
  /** SPKI DER, handed to peers. */
  readonly publicKeyDer: Buffer;
  readonly privateKey: KeyObject;
}

export async function openPeeringKey(store: KeyStore, rootKey: RootKey): Promise<PeeringKey> {
  if ((await store.getMeta(PEERING_KEY.meta)) === undefined) {
    const pair = generatePeeringKeyPair();
    const wrapped = await rootKey.wrap(pair.privateKeyDer, PEERING_KEY.context);
    pair.privateKeyDer.fill(0);
    await store.setMeta(PUBLIC_META, pair.publicKeyDer.toString("base64"));
    await store.setMeta(PEERING_KEY.meta, wrapped.toString("base64"));
  }
  const [wrapped, publicKey] = [
    await store.getMeta(PEERING_KEY.meta),
    await store.getMeta(PUBLIC_META),
  ];
  const der = await rootKey.unwrap(Buffer.from(wrapped!, "base64"), PEERING_KEY.context);
  const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  der.fill(0);
  return { publicKeyDer: Buffer.from(publicKey!, "base64"), privateKey };
}
