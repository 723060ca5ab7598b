/**
 * This instance's peering key pair (docs/multi-region.md): the RSA key peers seal key
 * material to when they replicate a multi-Region key here. Made on first use; the private
 * half is kept in the store wrapped under the root key (like the STS session key); the
 * public half is derived from it.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { generatePeeringKeyPair } from "../crypto/peeringEnvelope.js";
import type { RootKey } from "../rootkey/rootKey.js";
import type { KeyStore } from "../store/keyStore.js";

/** Where the wrapped private key is kept, and its root-key context (keyhaven rewrap reads both). */
export const PEERING_KEY = { meta: "peeringPrivateKey", context: "keyhaven/peering-key" } as const;

export interface PeeringKey {
  /** SPKI DER, handed to peers. */
  readonly publicKeyDer: Buffer;
  readonly privateKey: KeyObject;
}

export async function openPeeringKey(store: KeyStore, rootKey: RootKey): Promise<PeeringKey> {
  let wrapped = await store.getMeta(PEERING_KEY.meta);
  if (wrapped === undefined) {
    const pair = generatePeeringKeyPair();
    const mine = await rootKey.wrap(pair.privateKeyDer, PEERING_KEY.context);
    pair.privateKeyDer.fill(0);
    // Several processes may start at once (serve --workers, replicas): the store keeps the
    // first key written, and every process uses that one.
    wrapped = await store.initMeta(PEERING_KEY.meta, mine.toString("base64"));
  }
  const der = await rootKey.unwrap(Buffer.from(wrapped, "base64"), PEERING_KEY.context);
  const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  der.fill(0);
  const publicKeyDer = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  return { publicKeyDer, privateKey };
}
