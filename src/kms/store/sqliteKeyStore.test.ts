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

describe("SqliteKeyStore's record cache", () => {
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  it("serves every write of this store at once, and hands out records nobody can change", async () => {
    const s = store();
    const k = key({ description: "0", tags: [{ TagKey: "a", TagValue: "b" }] });
    await s.createKey(k, material(k));
    const read = (await s.getKey(k.keyId))!;
    expect(
      Object.isFrozen(read) && Object.isFrozen(read.tags) && Object.isFrozen(read.tags[0]),
    ).toBe(true);
    await s.updateKey(k.keyId, (c) => ({ ...c, description: "1" }));
    expect((await s.getKey(k.keyId))?.description).toBe("1");
    const kept = { ...k, description: "2" };
    await s.updateKey(k.keyId, () => kept);
    kept.tags = [];
    expect((await s.getKey(k.keyId))?.tags).toEqual(k.tags);
    await s.updateKeyRemovingMaterial(k.keyId, (c) => ({ ...c, state: "PendingImport" }));
    expect((await s.getKey(k.keyId))?.state).toBe("PendingImport");
    await s.createAlias({ name: "alias/a", targetKeyId: k.keyId, createdAt: 1, updatedAt: 1 });
    expect((await s.getAlias("alias/a"))?.targetKeyId).toBe(k.keyId);
    const other = key();
    await s.createKey(other, material(other));
    await s.updateAlias("alias/a", other.keyId, 2);
    expect((await s.getAlias("alias/a"))?.targetKeyId).toBe(other.keyId);
    await s.deleteKey(other.keyId);
    expect(await s.getAlias("alias/a")).toBeUndefined();
    expect(await s.getKey(other.keyId)).toBeUndefined();
    await s.createAlias({ name: "alias/b", targetKeyId: k.keyId, createdAt: 1, updatedAt: 1 });
    expect(await s.getAlias("alias/b")).toBeDefined();
    await s.deleteAlias("alias/b");
    expect(await s.getAlias("alias/b")).toBeUndefined();
    await s.deleteKey(k.keyId);
    expect(await s.getKey(k.keyId)).toBeUndefined();
  });

  it("sees another connection's commits from the next event-loop turn on", async () => {
    const path = dbPath();
    const s = store(path);
    const k = key({ description: "mine" });
    await s.createKey(k, material(k));
    await s.createAlias({ name: "alias/x", targetKeyId: k.keyId, createdAt: 1, updatedAt: 1 });
    expect((await s.getKey(k.keyId))?.description).toBe("mine");
    expect(await s.getAlias("alias/x")).toBeDefined();
    const other = new Database(path);
    other.pragma("busy_timeout = 5000");
    try {
      other
        .prepare("UPDATE keys SET record = ? WHERE key_id = ?")
        .run(JSON.stringify({ ...k, description: "theirs" }), k.keyId);
      other.prepare("DELETE FROM aliases WHERE name = ?").run("alias/x");
    } finally {
      other.close();
    }
    await nextTurn();
    expect((await s.getKey(k.keyId))?.description).toBe("theirs");
    expect(await s.getAlias("alias/x")).toBeUndefined();
  });
});
