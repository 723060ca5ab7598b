/**
 * `sqlite` KeyStore: one database file (better-sqlite3) in WAL mode with
 * synchronous=FULL, so a write acknowledged to a client survives kill -9 and
 * power loss. Read-modify-write runs inside BEGIN IMMEDIATE transactions, so
 * concurrent writers (even other processes on the same file) never lose an update.
 */
import Database from "better-sqlite3";
import {
  StoreConflictError,
  type AliasRecord,
  type KeyMaterialRecord,
  type KeyRecord,
  type KeyStore,
  type Page,
} from "./keyStore.js";

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
   CREATE TABLE keys (key_id TEXT PRIMARY KEY, record TEXT NOT NULL) STRICT;
   CREATE TABLE key_materials (
     key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     wrapped BLOB NOT NULL,
     PRIMARY KEY (key_id, version)) STRICT;
   CREATE TABLE aliases (
     name TEXT PRIMARY KEY,
     target_key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL) STRICT;
   CREATE INDEX aliases_by_target ON aliases(target_key_id, name);`,
];

interface AliasRow {
  name: string;
  target_key_id: string;
  created_at: number;
  updated_at: number;
}
interface MaterialRow {
  key_id: string;
  version: number;
  created_at: number;
  wrapped: Buffer;
}

const toAlias = (r: AliasRow): AliasRecord => ({
  name: r.name,
  targetKeyId: r.target_key_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class SqliteKeyStore implements KeyStore {
  readonly #db: Database.Database;
  readonly #stmt;

  constructor(path: string) {
    this.#db = new Database(path);
    // busy_timeout first: switching to WAL needs a lock another opener may hold for a moment.
    this.#db.pragma("busy_timeout = 5000");
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
    this.#migrate();
    const db = this.#db;
    this.#stmt = {
      insertKey: db.prepare<[string, string]>("INSERT INTO keys (key_id, record) VALUES (?, ?)"),
      getKey: db.prepare<[string], { record: string }>("SELECT record FROM keys WHERE key_id = ?"),
      listKeys: db.prepare<[string, number], { record: string }>(
        "SELECT record FROM keys WHERE key_id > ? ORDER BY key_id LIMIT ?",
      ),
      putKey: db.prepare<[string, string]>("UPDATE keys SET record = ? WHERE key_id = ?"),
      deleteKey: db.prepare<[string]>("DELETE FROM keys WHERE key_id = ?"),
      insertMaterial: db.prepare<[string, number, number, Buffer]>(
        "INSERT INTO key_materials (key_id, version, created_at, wrapped) VALUES (?, ?, ?, ?)",
      ),
      getMaterial: db.prepare<[string, number], MaterialRow>(
        "SELECT key_id, version, created_at, wrapped FROM key_materials WHERE key_id = ? AND version = ?",
      ),
      insertAlias: db.prepare<[string, string, number, number]>(
        "INSERT INTO aliases (name, target_key_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
      ),
      getAlias: db.prepare<[string], AliasRow>("SELECT * FROM aliases WHERE name = ?"),
      updateAlias: db.prepare<[string, number, string]>(
        "UPDATE aliases SET target_key_id = ?, updated_at = ? WHERE name = ?",
      ),
      deleteAlias: db.prepare<[string]>("DELETE FROM aliases WHERE name = ?"),
      listAliases: db.prepare<[string, number], AliasRow>(
        "SELECT * FROM aliases WHERE name > ? ORDER BY name LIMIT ?",
      ),
      listAliasesOf: db.prepare<[string, string, number], AliasRow>(
        "SELECT * FROM aliases WHERE target_key_id = ? AND name > ? ORDER BY name LIMIT ?",
      ),
      aliasesOf: db.prepare<[string], AliasRow>(
        "SELECT * FROM aliases WHERE target_key_id = ? ORDER BY name",
      ),
      getMeta: db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE name = ?"),
      setMeta: db.prepare<[string, string]>(
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
      ),
    };
  }

  #migrate(): void {
    // The version is read inside the write lock: two processes opening a fresh file at
    // once would otherwise both run the first migration ("table meta already exists").
    const step = this.#db.transaction((): boolean => {
      const applied = this.#db.pragma("user_version", { simple: true }) as number;
      if (applied >= MIGRATIONS.length) return false;
      this.#db.exec(MIGRATIONS[applied]!);
      this.#db.pragma(`user_version = ${applied + 1}`);
      return true;
    });
    while (step.immediate()) {
      // one migration per transaction, until none is left
    }
  }

  async createKey(key: KeyRecord, material: KeyMaterialRecord): Promise<void> {
    this.#db
      .transaction(() => {
        try {
          this.#stmt.insertKey.run(key.keyId, JSON.stringify(key));
        } catch (err) {
          if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
            throw new StoreConflictError(`key ${key.keyId} exists`);
          throw err;
        }
        this.#stmt.insertMaterial.run(
          material.keyId,
          material.version,
          material.createdAt,
          material.wrapped,
        );
      })
      .immediate();
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const row = this.#stmt.getKey.get(keyId);
    return row ? (JSON.parse(row.record) as KeyRecord) : undefined;
  }

  async listKeys(limit: number, after = ""): Promise<Page<KeyRecord>> {
    const rows = this.#stmt.listKeys.all(after, limit + 1);
    const items = rows.slice(0, limit).map((r) => JSON.parse(r.record) as KeyRecord);
    return rows.length > limit ? { items, next: items[items.length - 1]!.keyId } : { items };
  }

  async updateKey(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#db
      .transaction(() => {
        const row = this.#stmt.getKey.get(keyId);
        if (!row) return undefined;
        const next = mutate(JSON.parse(row.record) as KeyRecord);
        this.#stmt.putKey.run(JSON.stringify(next), keyId);
        return next;
      })
      .immediate();
  }

  async deleteKey(keyId: string): Promise<void> {
    this.#stmt.deleteKey.run(keyId);
  }

  async addMaterial(m: KeyMaterialRecord): Promise<void> {
    try {
      this.#stmt.insertMaterial.run(m.keyId, m.version, m.createdAt, m.wrapped);
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new StoreConflictError(`material version ${m.version} of key ${m.keyId} exists`);
      }
      throw err;
    }
  }

  async getMaterial(keyId: string, version: number): Promise<KeyMaterialRecord | undefined> {
    const r = this.#stmt.getMaterial.get(keyId, version);
    return r
      ? { keyId: r.key_id, version: r.version, createdAt: r.created_at, wrapped: r.wrapped }
      : undefined;
  }

  async createAlias(alias: AliasRecord): Promise<void> {
    try {
      this.#stmt.insertAlias.run(alias.name, alias.targetKeyId, alias.createdAt, alias.updatedAt);
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw new StoreConflictError(`alias ${alias.name} exists`);
      throw err;
    }
  }

  async getAlias(name: string): Promise<AliasRecord | undefined> {
    const r = this.#stmt.getAlias.get(name);
    return r ? toAlias(r) : undefined;
  }

  async updateAlias(name: string, targetKeyId: string, updatedAt: number): Promise<boolean> {
    return this.#stmt.updateAlias.run(targetKeyId, updatedAt, name).changes > 0;
  }

  async deleteAlias(name: string): Promise<boolean> {
    return this.#stmt.deleteAlias.run(name).changes > 0;
  }

  async listAliases(limit: number, after = "", targetKeyId?: string): Promise<Page<AliasRecord>> {
    const rows =
      targetKeyId === undefined
        ? this.#stmt.listAliases.all(after, limit + 1)
        : this.#stmt.listAliasesOf.all(targetKeyId, after, limit + 1);
    const items = rows.slice(0, limit).map(toAlias);
    return rows.length > limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async aliasesOf(keyId: string): Promise<readonly AliasRecord[]> {
    return this.#stmt.aliasesOf.all(keyId).map(toAlias);
  }

  async getMeta(name: string): Promise<string | undefined> {
    return this.#stmt.getMeta.get(name)?.value;
  }

  async setMeta(name: string, value: string): Promise<void> {
    this.#stmt.setMeta.run(name, value);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
