import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  contractKey as key,
  contractMaterial as material,
  describeKeyStoreContract,
} from "../../../test/support/keyStoreContract.js";
import { SqliteKeyStore } from "./sqliteKeyStore.js";

const open: SqliteKeyStore[] = [];
const dbPath = () => join(mkdtempSync(join(tmpdir(), "keyhaven-store-")), "keyhaven.db");
function store(path = dbPath()): SqliteKeyStore {
  const s = new SqliteKeyStore(path);
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

// One space is one database file; every store opened on it is another connection.
describeKeyStoreContract("sqlite", {
  async fresh() {
    const path = dbPath();
    return async () => new SqliteKeyStore(path);
  },
});

describe("SqliteKeyStore", () => {
  it("reopens an existing file without re-running migrations, keeping the data", async () => {
    const path = dbPath();
    const first = new SqliteKeyStore(path);
    const k = key();
    await first.createKey(k, material(k));
    await first.close();
    const version = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.pragma("user_version", { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    const migrated = version();
    expect(migrated).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 2; i++) {
      const again = new SqliteKeyStore(path);
      expect(await again.getKey(k.keyId)).toEqual(k);
      await again.close();
      expect(version()).toBe(migrated);
    }
  });

  it("keeps its journal in WAL mode (kill -9 durability itself is proven in test/durability.test.ts)", () => {
    const path = dbPath();
    store(path);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    } finally {
      db.close();
    }
  });
});
