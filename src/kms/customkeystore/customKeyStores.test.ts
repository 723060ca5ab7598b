/**
 * Two processes' CustomKeyStores on one SQLite file (as `serve --workers 2` has them): what
 * one does (create, connect, disconnect, delete) the other follows at its next call after
 * the commit, each with its own session to the backing store.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterEach, expect, it } from "vitest";
import { SqliteKeyStore } from "../store/sqliteKeyStore.js";
import type { RootKey } from "../rootkey/rootKey.js";
import { CustomKeyStores, type KeyStoreConnection, type KeyStoreType } from "./customKeyStores.js";

const rootKey: RootKey = {
  id: "test",
  wrap: async (plain) => Buffer.from(plain),
  unwrap: async (wrapped) => Buffer.from(wrapped),
  close: async () => undefined,
};

/** A backing store type whose sessions are counted per process. */
function countingType(open: Set<string>): KeyStoreType {
  return {
    type: "AWS_CLOUDHSM",
    create: async () => ({ settings: {} }),
    update: async () => ({ changes: false }),
    describe: () => ({}),
    keyMetadata: () => ({}),
    async connect(record): Promise<KeyStoreConnection> {
      open.add(record.id);
      return {
        createKey: async () => undefined,
        gcm: () => {
          throw new Error("not used");
        },
        deleteKey: async () => undefined,
        close: async () => void open.delete(record.id),
      };
    },
  };
}

const stores: SqliteKeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function openProcess(path: string) {
  const store = new SqliteKeyStore(path);
  stores.push(store);
  const open = new Set<string>();
  const manager = new CustomKeyStores({
    repository: store.customKeyStores,
    rootKey,
    types: [countingType(open)],
    now: () => 0,
  });
  await manager.start();
  return { manager, open };
}

const states = (m: CustomKeyStores) => m.describe({}).map((e) => e.ConnectionState);
/** Lets connections settle and a new event-loop turn begin (changes are checked once a turn). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await nextTurn();
};

it("follows another process's create, connect, disconnect and delete", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "keyhaven-cks-")), "keyhaven.db");
  const a = await openProcess(path);
  const b = await openProcess(path);
  const { id } = await a.manager.create({
    CustomKeyStoreName: "hsm",
    CustomKeyStoreType: "AWS_CLOUDHSM",
  });
  await settle();
  expect(b.manager.describe({ id }).map((e) => e.CustomKeyStoreName)).toEqual(["hsm"]);

  await a.manager.connect(id);
  await settle();
  expect(states(b.manager)).toEqual(["CONNECTING"]); // b opens its own session on seeing it
  await settle();
  expect([states(a.manager), states(b.manager)]).toEqual([["CONNECTED"], ["CONNECTED"]]);
  expect([a.open.has(id), b.open.has(id)]).toEqual([true, true]);

  await b.manager.disconnect(id);
  await settle();
  states(a.manager);
  await settle();
  expect([states(a.manager), states(b.manager)]).toEqual([["DISCONNECTED"], ["DISCONNECTED"]]);
  expect([a.open.has(id), b.open.has(id)]).toEqual([false, false]);

  await a.manager.delete(id);
  await settle();
  expect(b.manager.describe({})).toEqual([]);
  expect(() => b.manager.describe({ id })).toThrow(/does not exist/);
});
