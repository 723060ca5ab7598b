/**
 * The key that seals STS session tokens (see sessionCredentials.ts): 32 random
 * bytes made on first use, kept in the store wrapped under the root key, so every
 * replica on the same store accepts every replica's sessions and a restart keeps
 * them valid.
 */
import { randomBytes } from "node:crypto";
import type { RootKey } from "../rootkey/rootKey.js";
import type { KeyStore } from "../store/keyStore.js";

/** Where the wrapped key is kept, and its root-key context (keyhaven rewrap reads both). */
export const SESSION_KEY = { meta: "stsSessionKey", context: "keyhaven/sts-session-key" } as const;
const META = SESSION_KEY.meta;
const CONTEXT = SESSION_KEY.context;

export async function openSessionKey(store: KeyStore, rootKey: RootKey): Promise<Buffer> {
  const stored = await store.getMeta(META);
  if (stored !== undefined) return rootKey.unwrap(Buffer.from(stored, "base64"), CONTEXT);
  const key = randomBytes(32);
  // Another replica may write its key first: the store keeps the first, and all use it.
  const winner = await store.initMeta(META, (await rootKey.wrap(key, CONTEXT)).toString("base64"));
  return rootKey.unwrap(Buffer.from(winner, "base64"), CONTEXT);
}
