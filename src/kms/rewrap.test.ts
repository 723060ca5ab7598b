import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { symmetricKeyRecord } from "../../test/support/keyRecords.js";
import { openSessionKey, SESSION_KEY } from "./identity/sessionKey.js";
import { KeyService } from "./keyService.js";
import { REWRAP_META, RewrapError, rewrapStore, type RewrapProgress } from "./rewrap.js";
import { LocalRootKey } from "./rootkey/localRootKey.js";
import type { RootKey } from "./rootkey/rootKey.js";
import { SqliteKeyStore } from "./store/sqliteKeyStore.js";
import { secretContext } from "./customkeystore/customKeyStoreRecord.js";

const stores: SqliteKeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A store written under `rootKey`: three keys with 1, 2 and 3 material versions, and an STS session key. */
async function storeUnder(rootKey: RootKey) {
  const store = new SqliteKeyStore(join(mkdtempSync(join(tmpdir(), "keyhaven-rewrap-")), "db"));
  stores.push(store);
  await store.setMeta("rootKeyId", rootKey.id);
  const materials = new Map<string, Buffer>();
  for (let versions = 1; versions <= 3; versions++) {
    const keyId = randomUUID();
    for (let version = 1; version <= versions; version++) {
      const material = randomBytes(32);
      materials.set(KeyService.materialContext(keyId, version), material);
      const wrapped = await rootKey.wrap(material, KeyService.materialContext(keyId, version));
      const record = { keyId, version, createdAt: 0, wrapped };
      if (version === 1)
        await store.createKey(
          symmetricKeyRecord({ keyId, currentMaterialVersion: versions }),
          record,
        );
      else await store.addMaterial(record);
    }
  }
  const sessionKey = await openSessionKey(store, rootKey);
  return { store, materials, sessionKey };
}

/** Every value in the store authenticates under `rootKey` and holds what was written. */
async function expectAllUnder(
  s: Awaited<ReturnType<typeof storeUnder>>,
  rootKey: RootKey,
): Promise<void> {
  for (const [context, material] of s.materials) {
    const [, keyId, version] = context.split("/");
    const m = await s.store.getMaterial(keyId!, Number(version));
    expect((await rootKey.unwrap(m!.wrapped, context)).equals(material)).toBe(true);
  }
  expect((await openSessionKey(s.store, rootKey)).equals(s.sessionKey)).toBe(true);
  expect(await s.store.getMeta("rootKeyId")).toBe(rootKey.id);
  expect((await s.store.getMeta(REWRAP_META)) ?? "").toBe("");
}

describe("rewrapStore", () => {
  const a = new LocalRootKey(randomBytes(32));
  const b = new LocalRootKey(randomBytes(32));

  it("moves every material version and the STS session key to the new root key, and back", async () => {
    const s = await storeUnder(a);
    const progress: RewrapProgress[] = [];
    expect(await rewrapStore(s.store, a, b, (p) => progress.push(p))).toEqual({
      total: 7,
      done: 7,
      rewrapped: 7,
    });
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await expectAllUnder(s, b);
    // The old root key opens nothing any more.
    const [context, material] = [...s.materials][0]!;
    const [, keyId] = context.split("/");
    const moved = (await s.store.getMaterial(keyId!, 1))!.wrapped;
    await expect(a.unwrap(moved, context)).rejects.toThrow(/does not authenticate/);
    expect((await b.unwrap(moved, context)).equals(material)).toBe(true);
    await rewrapStore(s.store, b, a);
    await expectAllUnder(s, a);
  });

  it("resumes an interrupted run without losing or redoing a version", async () => {
    const s = await storeUnder(a);
    const stop = new Error("interrupted");
    await expect(
      rewrapStore(s.store, a, b, (p) => {
        if (p.done === 3) throw stop;
      }),
    ).rejects.toBe(stop);
    // Half done: the store says so (the key service refuses to start on it) and keeps its old id.
    expect(await s.store.getMeta(REWRAP_META)).toBe(b.id);
    expect(await s.store.getMeta("rootKeyId")).toBe(a.id);
    expect(await rewrapStore(s.store, a, b)).toEqual({ total: 7, done: 7, rewrapped: 4 });
    await expectAllUnder(s, b);
    // Once finished, running it again does nothing.
    expect(await rewrapStore(s.store, a, b)).toEqual({ total: 0, done: 0, rewrapped: 0 });
  });

  it("moves custom key stores' secrets (token PINs) with the rest", async () => {
    const s = await storeUnder(a);
    const id = "cks-0123456789abcdef0";
    const pin = Buffer.from("token-pin");
    await s.store.customKeyStores.createCustomKeyStore({
      id,
      name: "hsm",
      type: "AWS_CLOUDHSM",
      createdAt: 0,
      connectRequested: true,
      settings: { cloudHsmClusterId: "cluster-keyhavenStoreA" },
      wrappedSecret: await a.wrap(pin, secretContext(id)),
    });
    expect(await rewrapStore(s.store, a, b, undefined, s.store.customKeyStores)).toEqual({
      total: 8,
      done: 8,
      rewrapped: 8,
    });
    await expectAllUnder(s, b);
    const moved = (await s.store.customKeyStores.getCustomKeyStore(id))!;
    expect((await b.unwrap(moved.wrappedSecret!, secretContext(id))).equals(pin)).toBe(true);
    expect(moved).toMatchObject({ name: "hsm", connectRequested: true });
  });

  it("refuses a --from root key the store was not written with, and changes nothing", async () => {
    const s = await storeUnder(a);
    const other = new LocalRootKey(randomBytes(32));
    await expect(rewrapStore(s.store, other, b)).rejects.toThrow(RewrapError);
    await expect(rewrapStore(s.store, other, b)).rejects.toThrow(
      /written with root key local:[0-9a-f]+, not local:/,
    );
    await expectAllUnder(s, a);
    expect(await s.store.getMeta(SESSION_KEY.meta)).toBeDefined();
  });
});
