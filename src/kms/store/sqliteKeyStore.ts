/**
 * `sqlite` KeyStore: one database file (better-sqlite3) in WAL mode with
 * synchronous=FULL, so a write acknowledged to a client survives kill -9 and
 * power loss. Read-modify-write runs inside BEGIN IMMEDIATE transactions, so
 * concurrent writers (even other processes on the same file) never lose an update.
 *
 * Key records and aliases are read on every request, and a read costs a read transaction
 * (file locks: system calls) plus JSON parsing; so they are cached, parsed and frozen.
 * Every write of this store updates or drops its entries; another connection's commits
 * (another process on the same file, `keyhaven serve --workers`) are found with
 * `PRAGMA data_version`, checked once per event-loop turn, and clear the caches: a read
 * sees what other processes committed before the current turn began. While someone
 * watches due dates (the lifecycle loop), data_version is also polled every second, so a
 * due date another process wrote re-arms the loop of the process that runs the timers.
 */
import { closeSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { nextDueAt } from "../keys/dueDates.js";
import {
  StoreConflictError,
  type AliasRecord,
  type GrantRecord,
  type ImportParametersRecord,
  type KeyCount,
  type KeyStore,
  type Page,
} from "./keyStore.js";
import type { KeyMaterialRecord, KeyRecord } from "../keys/keyRecord.js";
import { GRANTS_MIGRATION, SqliteGrants } from "./sqliteGrants.js";
import { CUSTOM_KEY_STORES_MIGRATION, SqliteCustomKeyStores } from "./sqliteCustomKeyStores.js";

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
  // Key lifecycle: each key's next due date (see keys/dueDates.ts), how each material
  // version came to be, and the wrapping keys of GetParametersForImport.
  `ALTER TABLE keys ADD COLUMN due_at INTEGER;
   CREATE INDEX keys_by_due_at ON keys(due_at) WHERE due_at IS NOT NULL;
   ALTER TABLE key_materials ADD COLUMN rotation_type TEXT;
   ALTER TABLE key_materials ADD COLUMN material_id TEXT;
   CREATE TABLE import_parameters (
     token_id TEXT PRIMARY KEY,
     key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     wrapping_algorithm TEXT NOT NULL,
     wrapping_key_spec TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     wrapped_private_key BLOB NOT NULL) STRICT;
   CREATE INDEX import_parameters_by_expiry ON import_parameters(expires_at);
   CREATE INDEX import_parameters_by_key ON import_parameters(key_id);`,
  // Grants (access control).
  GRANTS_MIGRATION,
  // Keys by state and spec for /metrics: a covering index scan (~1.5 ms for 10,000 keys
  // instead of ~30 ms parsing every record); countKeys uses the same expressions.
  `CREATE INDEX keys_by_state_spec ON keys(json_extract(record, '$.state'), json_extract(record, '$.keySpec'));`,
  // Custom key stores (docs/hsm.md), with their keys found by the id in the key's record.
  `${CUSTOM_KEY_STORES_MIGRATION}
   CREATE INDEX keys_by_custom_key_store ON keys(json_extract(record, '$.customKeyStoreId'))
     WHERE json_extract(record, '$.customKeyStoreId') IS NOT NULL;`,
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
  rotation_type: string | null;
  material_id: string | null;
}
interface ImportParametersRow {
  token_id: string;
  key_id: string;
  wrapping_algorithm: string;
  wrapping_key_spec: string;
  created_at: number;
  expires_at: number;
  wrapped_private_key: Buffer;
}

const importParameters = (r: ImportParametersRow): ImportParametersRecord => ({
  tokenId: r.token_id,
  keyId: r.key_id,
  wrappingAlgorithm: r.wrapping_algorithm,
  wrappingKeySpec: r.wrapping_key_spec,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  wrappedPrivateKey: r.wrapped_private_key,
});

const toMaterial = (r: MaterialRow): KeyMaterialRecord => ({
  keyId: r.key_id,
  version: r.version,
  createdAt: r.created_at,
  wrapped: r.wrapped,
  ...(r.rotation_type !== null && {
    rotationType: r.rotation_type as KeyMaterialRecord["rotationType"] & string,
  }),
  ...(r.material_id !== null && { materialId: r.material_id }),
});

/** How often a process watching due dates looks for other processes' commits. */
const OTHER_WRITERS_POLL_MS = 1000;

/** How many key records and aliases are kept parsed (oldest out first). */
const CACHE_SIZE = 10_000;

/** Cached records are shared by every request that reads them: nothing may change them. */
function frozenKey(key: KeyRecord): KeyRecord {
  for (const tag of key.tags) Object.freeze(tag);
  Object.freeze(key.tags);
  return Object.freeze(key);
}

function remember<T>(cache: Map<string, T>, id: string, value: T): T {
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(id, value);
  return value;
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
  readonly #dueListeners = new Set<(dueAt: number) => void>();
  readonly #grants: SqliteGrants;
  readonly #keys = new Map<string, KeyRecord>();
  readonly #aliases = new Map<string, AliasRecord>();
  readonly #dataVersion: Database.Statement<[], number>;
  #seenVersion = -1;
  #checkedThisTurn = false;
  readonly #otherWriterListeners = new Set<() => void>();
  #poll: NodeJS.Timeout | undefined;
  /** Custom key stores, kept in the same file (not part of the KeyStore interface). */
  readonly customKeyStores: SqliteCustomKeyStores;

  constructor(path: string) {
    // Created 0600 here, whatever the umask: SQLite would make it 0644, and it gives the
    // -wal and -shm files the database file's mode.
    if (path !== ":memory:") closeSync(openSync(path, "a", 0o600));
    this.#db = new Database(path);
    // busy_timeout first: switching to WAL needs a lock another opener may hold for a moment.
    this.#db.pragma("busy_timeout = 5000");
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
    this.#migrate();
    const db = this.#db;
    this.#grants = new SqliteGrants(db);
    this.#dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.#seenVersion = this.#dataVersion.get()!;
    this.customKeyStores = new SqliteCustomKeyStores(db);
    this.#stmt = {
      insertKey: db.prepare<[string, string, number | null]>(
        "INSERT INTO keys (key_id, record, due_at) VALUES (?, ?, ?)",
      ),
      getKey: db.prepare<[string], { record: string }>("SELECT record FROM keys WHERE key_id = ?"),
      listKeys: db.prepare<[string, number], { record: string }>(
        "SELECT record FROM keys WHERE key_id > ? ORDER BY key_id LIMIT ?",
      ),
      putKey: db.prepare<[string, number | null, string]>(
        "UPDATE keys SET record = ?, due_at = ? WHERE key_id = ?",
      ),
      deleteKey: db.prepare<[string]>("DELETE FROM keys WHERE key_id = ?"),
      countKeys: db.prepare<[], KeyCount>(
        "SELECT json_extract(record, '$.state') AS state, json_extract(record, '$.keySpec') AS keySpec, count(*) AS count FROM keys GROUP BY 1, 2",
      ),
      insertMaterial: db.prepare<[string, number, number, Buffer, string | null, string | null]>(
        "INSERT INTO key_materials (key_id, version, created_at, wrapped, rotation_type, material_id) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      replaceMaterial: db.prepare<[string, number, number, Buffer, string | null, string | null]>(
        `INSERT INTO key_materials (key_id, version, created_at, wrapped, rotation_type, material_id)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key_id, version) DO UPDATE SET
           created_at = excluded.created_at, wrapped = excluded.wrapped
         WHERE material_id IS excluded.material_id`,
      ),
      getMaterial: db.prepare<[string, number], MaterialRow>(
        "SELECT * FROM key_materials WHERE key_id = ? AND version = ?",
      ),
      listMaterials: db.prepare<[string, number, number], MaterialRow>(
        "SELECT * FROM key_materials WHERE key_id = ? AND version > ? ORDER BY version LIMIT ?",
      ),
      deleteMaterials: db.prepare<[string]>("DELETE FROM key_materials WHERE key_id = ?"),
      replaceWrapped: db.prepare<[Buffer, string, number, Buffer]>(
        "UPDATE key_materials SET wrapped = ? WHERE key_id = ? AND version = ? AND wrapped = ?",
      ),
      keysDue: db.prepare<[number, number], { record: string }>(
        "SELECT record FROM keys WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
      ),
      nextDueAt: db.prepare<[], { due: number | null }>(
        "SELECT MIN(due_at) AS due FROM keys WHERE due_at IS NOT NULL",
      ),
      insertImportParameters: db.prepare<[string, string, string, string, number, number, Buffer]>(
        "INSERT INTO import_parameters (token_id, key_id, wrapping_algorithm, wrapping_key_spec, created_at, expires_at, wrapped_private_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      getImportParameters: db.prepare<[string], ImportParametersRow>(
        "SELECT * FROM import_parameters WHERE token_id = ?",
      ),
      importParametersOf: db.prepare<[string], ImportParametersRow>(
        "SELECT * FROM import_parameters WHERE key_id = ? ORDER BY token_id",
      ),
      deleteExpiredImportParameters: db.prepare<[number]>(
        "DELETE FROM import_parameters WHERE expires_at <= ?",
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
      initMeta: db.prepare<[string, string]>(
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
      ),
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

  async createKey(key: KeyRecord, material?: KeyMaterialRecord): Promise<void> {
    this.#db
      .transaction(() => {
        try {
          this.#stmt.insertKey.run(key.keyId, JSON.stringify(key), nextDueAt(key) ?? null);
        } catch (err) {
          if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
            throw new StoreConflictError(`key ${key.keyId} exists`);
          throw err;
        }
        if (material) this.#insertMaterial(material, false);
      })
      .immediate();
    this.#keys.delete(key.keyId);
    this.#notifyDue(key);
  }

  /**
   * Inserts a material version. With `sameMaterialMayReplace`, an existing row of that
   * version is rewritten only if it holds the same material (same material id: a re-import);
   * any other clash is a StoreConflictError, so a version can never change its material.
   */
  #insertMaterial(m: KeyMaterialRecord, sameMaterialMayReplace: boolean): void {
    const args = [
      m.keyId,
      m.version,
      m.createdAt,
      m.wrapped,
      m.rotationType ?? null,
      m.materialId ?? null,
    ] as const;
    if (sameMaterialMayReplace) {
      if (this.#stmt.replaceMaterial.run(...args).changes === 0)
        throw new StoreConflictError(`material version ${m.version} of key ${m.keyId} exists`);
      return;
    }
    try {
      this.#stmt.insertMaterial.run(...args);
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw new StoreConflictError(`material version ${m.version} of key ${m.keyId} exists`);
      throw err;
    }
  }

  #putKey(key: KeyRecord): void {
    this.#stmt.putKey.run(JSON.stringify(key), nextDueAt(key) ?? null, key.keyId);
  }

  #notifyDue(key: KeyRecord | undefined): void {
    const due = key && nextDueAt(key);
    if (due === undefined) return;
    for (const listener of this.#dueListeners) listener(due);
  }

  /** Runs `mutate` and `also` in one IMMEDIATE transaction, then tells due-date watchers. */
  #update(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
    also?: (next: KeyRecord) => void,
  ): KeyRecord | undefined {
    const next = this.#db
      .transaction(() => {
        const row = this.#stmt.getKey.get(keyId);
        if (!row) return undefined;
        const next = mutate(JSON.parse(row.record) as KeyRecord);
        also?.(next);
        this.#putKey(next);
        return next;
      })
      .immediate();
    // Not cached from here: the mutator's result may be an object its caller keeps and changes.
    this.#keys.delete(keyId);
    this.#notifyDue(next);
    return next;
  }

  /**
   * Drops the caches if another connection committed since the last check; checks at
   * most once per event-loop turn (a data_version read is a read transaction, ~8 µs).
   */
  #fresh(): void {
    if (this.#checkedThisTurn) return;
    this.#checkedThisTurn = true;
    setImmediate(() => {
      this.#checkedThisTurn = false;
    }).unref();
    this.#checkOtherWriters();
  }

  #checkOtherWriters(): void {
    if (!this.#db.open) return;
    const version = this.#dataVersion.get()!;
    if (version === this.#seenVersion) return;
    this.#seenVersion = version;
    this.#keys.clear();
    this.#aliases.clear();
    for (const listener of this.#otherWriterListeners) listener();
    if (this.#dueListeners.size === 0) return;
    const due = this.#stmt.nextDueAt.get()?.due;
    if (due != null) for (const listener of this.#dueListeners) listener(due);
  }

  /**
   * Calls `listener` when a commit of another connection to the file is noticed (at a read
   * of a key or an alias, or by the due-date poll); returns the function that stops it.
   */
  onOtherWriters(listener: () => void): () => void {
    this.#otherWriterListeners.add(listener);
    return () => this.#otherWriterListeners.delete(listener);
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    this.#fresh();
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const row = this.#stmt.getKey.get(keyId);
    return row
      ? remember(this.#keys, keyId, frozenKey(JSON.parse(row.record) as KeyRecord))
      : undefined;
  }

  async listKeys(limit: number, after = ""): Promise<Page<KeyRecord>> {
    const rows = this.#stmt.listKeys.all(after, limit + 1);
    const items = rows.slice(0, limit).map((r) => JSON.parse(r.record) as KeyRecord);
    return rows.length > limit ? { items, next: items[items.length - 1]!.keyId } : { items };
  }

  async countKeys(): Promise<readonly KeyCount[]> {
    return this.#stmt.countKeys.all();
  }

  async updateKey(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#update(keyId, mutate);
  }

  async updateKeyWithMaterial(
    keyId: string,
    material: KeyMaterialRecord,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#update(keyId, mutate, () => this.#insertMaterial(material, true));
  }

  async updateKeyRemovingMaterial(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#update(keyId, mutate, () => this.#stmt.deleteMaterials.run(keyId));
  }

  async listMaterials(
    keyId: string,
    limit: number,
    afterVersion = 0,
  ): Promise<Page<KeyMaterialRecord>> {
    const rows = this.#stmt.listMaterials.all(keyId, afterVersion, limit + 1);
    const items = rows.slice(0, limit).map(toMaterial);
    return rows.length > limit
      ? { items, next: String(items[items.length - 1]!.version) }
      : { items };
  }

  async keysDue(until: number, limit: number): Promise<readonly KeyRecord[]> {
    return this.#stmt.keysDue.all(until, limit).map((r) => JSON.parse(r.record) as KeyRecord);
  }

  async nextDueAt(): Promise<number | undefined> {
    return this.#stmt.nextDueAt.get()?.due ?? undefined;
  }

  watchDueDates(listener: (dueAt: number) => void): () => void {
    this.#dueListeners.add(listener);
    this.#poll ??= setInterval(() => this.#checkOtherWriters(), OTHER_WRITERS_POLL_MS).unref();
    return () => {
      this.#dueListeners.delete(listener);
      if (this.#dueListeners.size === 0) this.#stopPolling();
    };
  }

  #stopPolling(): void {
    clearInterval(this.#poll);
    this.#poll = undefined;
  }

  async putImportParameters(p: ImportParametersRecord): Promise<void> {
    this.#stmt.insertImportParameters.run(
      p.tokenId,
      p.keyId,
      p.wrappingAlgorithm,
      p.wrappingKeySpec,
      p.createdAt,
      p.expiresAt,
      p.wrappedPrivateKey,
    );
  }

  async getImportParameters(tokenId: string): Promise<ImportParametersRecord | undefined> {
    const r = this.#stmt.getImportParameters.get(tokenId);
    return r ? importParameters(r) : undefined;
  }

  async importParametersOf(keyId: string): Promise<readonly ImportParametersRecord[]> {
    return this.#stmt.importParametersOf.all(keyId).map(importParameters);
  }

  async deleteExpiredImportParameters(now: number): Promise<number> {
    return this.#stmt.deleteExpiredImportParameters.run(now).changes;
  }

  async deleteKey(keyId: string): Promise<boolean> {
    const deleted = this.#stmt.deleteKey.run(keyId).changes > 0;
    this.#keys.delete(keyId);
    this.#aliases.clear();
    this.#grants.invalidate();
    return deleted;
  }

  async addMaterial(m: KeyMaterialRecord): Promise<void> {
    this.#insertMaterial(m, false);
  }

  async getMaterial(keyId: string, version: number): Promise<KeyMaterialRecord | undefined> {
    const r = this.#stmt.getMaterial.get(keyId, version);
    return r ? toMaterial(r) : undefined;
  }

  async replaceWrappedMaterial(
    keyId: string,
    version: number,
    expected: Buffer,
    wrapped: Buffer,
  ): Promise<boolean> {
    return this.#stmt.replaceWrapped.run(wrapped, keyId, version, expected).changes === 1;
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
    this.#fresh();
    const cached = this.#aliases.get(name);
    if (cached) return cached;
    const r = this.#stmt.getAlias.get(name);
    return r ? remember(this.#aliases, name, Object.freeze(toAlias(r))) : undefined;
  }

  async updateAlias(name: string, targetKeyId: string, updatedAt: number): Promise<boolean> {
    this.#aliases.delete(name);
    return this.#stmt.updateAlias.run(targetKeyId, updatedAt, name).changes > 0;
  }

  async deleteAlias(name: string): Promise<boolean> {
    this.#aliases.delete(name);
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

  async createGrant(grant: GrantRecord): Promise<void> {
    this.#grants.create(grant);
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    return this.#grants.get(grantId);
  }

  async listGrants(
    keyId: string,
    limit: number,
    after?: string,
    granteePrincipal?: string,
  ): Promise<Page<GrantRecord>> {
    return this.#grants.list(keyId, limit, after, granteePrincipal);
  }

  async listRetirableGrants(
    retiringPrincipal: string,
    limit: number,
    after?: string,
  ): Promise<Page<GrantRecord>> {
    return this.#grants.retirable(retiringPrincipal, limit, after);
  }

  async grantsOf(keyId: string): Promise<readonly GrantRecord[]> {
    return this.#grants.of(keyId);
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    return this.#grants.delete(grantId);
  }

  async getMeta(name: string): Promise<string | undefined> {
    return this.#stmt.getMeta.get(name)?.value;
  }

  async setMeta(name: string, value: string): Promise<void> {
    this.#stmt.setMeta.run(name, value);
  }

  async initMeta(name: string, value: string): Promise<string> {
    return this.#db
      .transaction(() => {
        this.#stmt.initMeta.run(name, value);
        return this.#stmt.getMeta.get(name)!.value;
      })
      .immediate();
  }

  async close(): Promise<void> {
    this.#stopPolling();
    if (this.#db.open) this.#db.close();
  }
}
