import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { symmetricKeyRecord } from "../../../test/support/keyRecords.js";
import { StoreConflictError } from "./keyStore.js";
import type { KeyMaterialRecord, KeyRecord } from "../keys/keyRecord.js";
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

let n = 0;
function key(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const keyId = `00000000-0000-4000-8000-${(n++).toString(16).padStart(12, "0")}`;
  return symmetricKeyRecord({ keyId, createdAt: 1_700_000_000_000, ...overrides });
}
const material = (k: KeyRecord, version = 1): KeyMaterialRecord => ({
  keyId: k.keyId,
  version,
  createdAt: 1_700_000_000_000 + version,
  wrapped: Buffer.from(`wrapped-${k.keyId}-${version}`),
});

describe("SqliteKeyStore", () => {
  it("creates and reads keys and material; refuses a duplicate id", async () => {
    const s = store();
    const k = key({ description: "d", tags: [{ TagKey: "a", TagValue: "b" }] });
    await s.createKey(k, material(k));
    expect(await s.getKey(k.keyId)).toEqual(k);
    expect(await s.getMaterial(k.keyId, 1)).toMatchObject({
      keyId: k.keyId,
      version: 1,
      wrapped: Buffer.from(`wrapped-${k.keyId}-1`),
    });
    expect(await s.getMaterial(k.keyId, 2)).toBeUndefined();
    expect(await s.getKey("nope")).toBeUndefined();
    await expect(s.createKey(k, material(k))).rejects.toBeInstanceOf(StoreConflictError);
    await s.addMaterial(material(k, 2));
    await expect(s.addMaterial(material(k, 2))).rejects.toBeInstanceOf(StoreConflictError);
  });

  it("lists keys in id order, page by page, each exactly once", async () => {
    const s = store();
    const keys = Array.from({ length: 7 }, () => key());
    for (const k of [...keys].reverse()) await s.createKey(k, material(k));
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await s.listKeys(3, after);
      pages++;
      seen.push(...page.items.map((k) => k.keyId));
      after = page.next;
    } while (after !== undefined);
    expect(seen).toEqual(keys.map((k) => k.keyId).sort());
    expect(pages).toBe(3);
    const exact = await s.listKeys(7);
    expect(exact.items).toHaveLength(7);
    expect(exact.next).toBeUndefined();
  });

  it("updates atomically: a throwing mutator writes nothing; a missing key gives undefined", async () => {
    const s = store();
    const k = key();
    await s.createKey(k, material(k));
    const updated = await s.updateKey(k.keyId, (c) => ({ ...c, description: "new" }));
    expect(updated?.description).toBe("new");
    await expect(
      s.updateKey(k.keyId, () => {
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect((await s.getKey(k.keyId))?.description).toBe("new");
    expect(await s.updateKey("missing", (c) => c)).toBeUndefined();
  });

  it("loses no update when two store instances on one file write concurrently", async () => {
    const path = dbPath();
    const a = store(path);
    const b = store(path);
    const k = key({ description: "0" });
    await a.createKey(k, material(k));
    const increment = (s: SqliteKeyStore) =>
      s.updateKey(k.keyId, (c) => ({ ...c, description: String(Number(c.description) + 1) }));
    await Promise.all(Array.from({ length: 200 }, (_, i) => increment(i % 2 ? a : b)));
    expect((await a.getKey(k.keyId))?.description).toBe("200");
    expect((await b.getKey(k.keyId))?.description).toBe("200");
  });

  it("keeps alias names unique and reports missing ones", async () => {
    const s = store();
    const k1 = key();
    const k2 = key();
    await s.createKey(k1, material(k1));
    await s.createKey(k2, material(k2));
    const alias = { name: "alias/a", targetKeyId: k1.keyId, createdAt: 1, updatedAt: 1 };
    await s.createAlias(alias);
    await expect(s.createAlias({ ...alias, targetKeyId: k2.keyId })).rejects.toBeInstanceOf(
      StoreConflictError,
    );
    expect(await s.getAlias("alias/a")).toEqual(alias);
    expect(await s.updateAlias("alias/a", k2.keyId, 5)).toBe(true);
    expect(await s.getAlias("alias/a")).toEqual({ ...alias, targetKeyId: k2.keyId, updatedAt: 5 });
    expect(await s.updateAlias("alias/none", k2.keyId, 5)).toBe(false);
    expect(await s.deleteAlias("alias/a")).toBe(true);
    expect(await s.deleteAlias("alias/a")).toBe(false);
    expect(await s.getAlias("alias/a")).toBeUndefined();
  });

  it("refuses an alias to a key that does not exist", async () => {
    const s = store();
    await expect(
      s.createAlias({ name: "alias/x", targetKeyId: "ghost", createdAt: 1, updatedAt: 1 }),
    ).rejects.toThrow();
    expect(await s.getAlias("alias/x")).toBeUndefined();
  });

  it("lists aliases in name order, paged, optionally for one key", async () => {
    const s = store();
    const k1 = key();
    const k2 = key();
    await s.createKey(k1, material(k1));
    await s.createKey(k2, material(k2));
    for (const [name, target] of [
      ["alias/d", k1],
      ["alias/b", k2],
      ["alias/a", k1],
      ["alias/c", k1],
    ] as const)
      await s.createAlias({ name, targetKeyId: target.keyId, createdAt: 1, updatedAt: 1 });
    const first = await s.listAliases(2);
    expect(first.items.map((a) => a.name)).toEqual(["alias/a", "alias/b"]);
    const second = await s.listAliases(2, first.next);
    expect(second.items.map((a) => a.name)).toEqual(["alias/c", "alias/d"]);
    expect(second.next).toBeUndefined();
    const ofK1 = await s.listAliases(2, undefined, k1.keyId);
    expect(ofK1.items.map((a) => a.name)).toEqual(["alias/a", "alias/c"]);
    const ofK1Rest = await s.listAliases(2, ofK1.next, k1.keyId);
    expect(ofK1Rest.items.map((a) => a.name)).toEqual(["alias/d"]);
    expect((await s.aliasesOf(k2.keyId)).map((a) => a.name)).toEqual(["alias/b"]);
  });

  it("deletes a key with its material and aliases", async () => {
    const s = store();
    const k = key();
    const other = key();
    await s.createKey(k, material(k));
    await s.createKey(other, material(other));
    await s.addMaterial(material(k, 2));
    await s.createAlias({ name: "alias/gone", targetKeyId: k.keyId, createdAt: 1, updatedAt: 1 });
    await s.createAlias({
      name: "alias/kept",
      targetKeyId: other.keyId,
      createdAt: 1,
      updatedAt: 1,
    });
    await s.deleteKey(k.keyId);
    expect(await s.getKey(k.keyId)).toBeUndefined();
    expect(await s.getMaterial(k.keyId, 1)).toBeUndefined();
    expect(await s.getMaterial(k.keyId, 2)).toBeUndefined();
    expect(await s.getAlias("alias/gone")).toBeUndefined();
    expect(await s.getAlias("alias/kept")).toBeDefined();
    expect(await s.getMaterial(other.keyId, 1)).toBeDefined();
  });

  it("stores meta values and overwrites them", async () => {
    const s = store();
    expect(await s.getMeta("rootKeyId")).toBeUndefined();
    await s.setMeta("rootKeyId", "local:1");
    await s.setMeta("rootKeyId", "local:2");
    expect(await s.getMeta("rootKeyId")).toBe("local:2");
  });

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
