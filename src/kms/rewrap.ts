/**
 * `keyhaven rewrap`: moves a store from one root key to another (local ↔ pkcs11) by
 * unwrapping every key-material version under the old key and wrapping it under the new.
 *
 * Nothing is lost if it stops anywhere: each version is swapped by one compare-and-set
 * write (one SQLite transaction), so it is under the old key or the new, never neither.
 * While a run is unfinished the store's meta `rewrapInProgress` names the target and the
 * key service refuses to start; running the same command again resumes (a version that
 * already authenticates under the new key is skipped). The store's `rootKeyId` changes
 * only after the last version.
 *
 * Custom key stores' secrets (an AWS_CLOUDHSM store's token PIN) are wrapped values too.
 *
 * Outstanding import tokens (GetParametersForImport) are sealed under the old key and
 * stop working: callers ask for new ones, as after their 24 hours.
 */
import { KeyService } from "./keyService.js";
import { SESSION_KEY } from "./identity/sessionKey.js";
import { PEERING_KEY } from "./peering/peeringKey.js";
import { RootKeyError, type RootKey } from "./rootkey/rootKey.js";
import type { KeyStore } from "./store/keyStore.js";
import {
  secretContext,
  type CustomKeyStoreRepository,
} from "./customkeystore/customKeyStoreRecord.js";

export const REWRAP_META = "rewrapInProgress";
const ROOT_KEY_META = "rootKeyId";

export class RewrapError extends Error {
  override name = "RewrapError";
}

export interface RewrapProgress {
  /** Wrapped values (material versions, the STS session key) in the store. */
  readonly total: number;
  /** Of those: handled so far, of which rewrapped by this run (the rest were already done). */
  readonly done: number;
  readonly rewrapped: number;
}

/** A wrapped value, where it lives and the context it is bound to. */
interface Wrapped {
  readonly label: string;
  readonly context: string;
  readonly wrapped: Buffer;
  replace(next: Buffer): Promise<boolean>;
}

/** The store's root key after a finished run, or what blocks one. */
export async function rewrapStore(
  store: KeyStore,
  from: RootKey,
  to: RootKey,
  onProgress: (p: RewrapProgress) => void = () => {},
  customKeyStores?: CustomKeyStoreRepository,
): Promise<RewrapProgress> {
  const known = await store.getMeta(ROOT_KEY_META);
  const pending = (await store.getMeta(REWRAP_META)) || undefined;
  if (known === to.id && pending === undefined) return { total: 0, done: 0, rewrapped: 0 };
  const ours = new Set([from.id, to.id]);
  if (known !== undefined && !ours.has(known))
    throw new RewrapError(
      `the store was written with root key ${known}, not ${from.id}; give --from the root key it was written with`,
    );
  if (pending !== undefined && !ours.has(pending))
    throw new RewrapError(
      `an unfinished rewrap to ${pending} is recorded in the store; finish it first (--to for that root key)`,
    );
  await store.setMeta(REWRAP_META, to.id);

  const values = [
    ...(await listWrapped(store)),
    ...(customKeyStores ? await listSecrets(customKeyStores) : []),
  ];
  let done = 0;
  let rewrapped = 0;
  for (const v of values) {
    const plaintext = await unwrapEither(v, from, to);
    if (plaintext) {
      const next = await to.wrap(plaintext, v.context);
      plaintext.fill(0);
      if (!(await v.replace(next)))
        throw new RewrapError(
          `${v.label} changed while being rewrapped; stop every key service on this store, then run the command again`,
        );
      rewrapped++;
    }
    done++;
    onProgress({ total: values.length, done, rewrapped });
  }
  await store.setMeta(ROOT_KEY_META, to.id);
  await store.setMeta(REWRAP_META, "");
  return { total: values.length, done, rewrapped };
}

/** The plaintext under `from`, or undefined when `to` already wraps it (an earlier run). */
async function unwrapEither(v: Wrapped, from: RootKey, to: RootKey): Promise<Buffer | undefined> {
  try {
    return await from.unwrap(v.wrapped, v.context);
  } catch (err) {
    if (!(err instanceof RootKeyError)) throw err;
  }
  try {
    (await to.unwrap(v.wrapped, v.context)).fill(0);
    return undefined;
  } catch (err) {
    if (!(err instanceof RootKeyError)) throw err;
    throw new RewrapError(
      `${v.label} authenticates under neither ${from.id} nor ${to.id}; the store was written with another root key`,
    );
  }
}

async function listWrapped(store: KeyStore): Promise<Wrapped[]> {
  const values: Wrapped[] = [];
  let after: string | undefined;
  do {
    const keys = await store.listKeys(100, after);
    for (const key of keys.items) {
      let afterVersion: number | undefined;
      do {
        const page = await store.listMaterials(key.keyId, 100, afterVersion);
        for (const m of page.items)
          values.push({
            label: `version ${m.version} of key ${m.keyId}`,
            context: KeyService.materialContext(m.keyId, m.version),
            wrapped: m.wrapped,
            replace: (next) => store.replaceWrappedMaterial(m.keyId, m.version, m.wrapped, next),
          });
        afterVersion = page.next === undefined ? undefined : Number(page.next);
      } while (afterVersion !== undefined);
    }
    after = keys.next;
  } while (after !== undefined);
  for (const [label, meta] of [
    ["the STS session key", SESSION_KEY],
    ["the peering key", PEERING_KEY],
  ] as const) {
    const stored = await store.getMeta(meta.meta);
    if (stored !== undefined)
      values.push({
        label,
        context: meta.context,
        wrapped: Buffer.from(stored, "base64"),
        // One row, written once: with the key service stopped (docs/hsm.md) a plain write is the swap.
        replace: async (next) => {
          await store.setMeta(meta.meta, next.toString("base64"));
          return true;
        },
      });
  }
  return values;
}

/** The wrapped secrets of custom key stores (their token PINs). */
async function listSecrets(repository: CustomKeyStoreRepository): Promise<Wrapped[]> {
  return (await repository.listCustomKeyStores()).flatMap((record) => {
    const wrapped = record.wrappedSecret;
    if (!wrapped) return [];
    return [
      {
        label: `the secret of custom key store ${record.id}`,
        context: secretContext(record.id),
        wrapped,
        // Compare-and-set on the record, with the key service stopped (docs/hsm.md).
        replace: async (next: Buffer) => {
          const current = await repository.getCustomKeyStore(record.id);
          if (!current?.wrappedSecret?.equals(wrapped)) return false;
          return repository.putCustomKeyStore({ ...current, wrappedSecret: next });
        },
      },
    ];
  });
}
