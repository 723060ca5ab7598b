/**
 * The grants table of the sqlite store. Grants of a key are read on every request
 * that its policies do not allow, so they are cached per key; the cache is dropped
 * on this connection's own grant writes and, within a second, whenever another
 * connection (another process on the same file) commits, which `PRAGMA data_version`
 * reveals.
 */
import type Database from "better-sqlite3";
import { StoreConflictError, type GrantRecord, type Page } from "./keyStore.js";

/** The migration that creates the table (appended to sqliteKeyStore's MIGRATIONS). */
export const GRANTS_MIGRATION = `CREATE TABLE grants (
     grant_id TEXT PRIMARY KEY,
     key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     grantee TEXT NOT NULL,
     retiring TEXT,
     record TEXT NOT NULL) STRICT;
   CREATE INDEX grants_by_key ON grants(key_id, grant_id);
   CREATE INDEX grants_by_retiring ON grants(retiring, grant_id) WHERE retiring IS NOT NULL;`;

/** How often another process's grant writes are looked for, in milliseconds. */
const CHECK_MS = 1000;

interface Row {
  record: string;
}

export class SqliteGrants {
  readonly #stmt;
  readonly #cache = new Map<string, readonly GrantRecord[]>();
  #dataVersion = -1;
  #checkedAt = -Infinity;

  constructor(db: Database.Database) {
    this.#stmt = {
      insert: db.prepare<[string, string, string, string | null, string]>(
        "INSERT INTO grants (grant_id, key_id, grantee, retiring, record) VALUES (?, ?, ?, ?, ?)",
      ),
      get: db.prepare<[string], Row>("SELECT record FROM grants WHERE grant_id = ?"),
      ofKey: db.prepare<[string], Row>(
        "SELECT record FROM grants WHERE key_id = ? ORDER BY grant_id",
      ),
      page: db.prepare<[string, string, number], Row>(
        "SELECT record FROM grants WHERE key_id = ? AND grant_id > ? ORDER BY grant_id LIMIT ?",
      ),
      pageOfGrantee: db.prepare<[string, string, string, number], Row>(
        "SELECT record FROM grants WHERE key_id = ? AND grantee = ? AND grant_id > ? ORDER BY grant_id LIMIT ?",
      ),
      retirable: db.prepare<[string, string, number], Row>(
        "SELECT record FROM grants WHERE retiring = ? AND grant_id > ? ORDER BY grant_id LIMIT ?",
      ),
      delete: db.prepare<[string]>("DELETE FROM grants WHERE grant_id = ?"),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
  }

  /** Forget cached grants (after any write of this connection that may remove some). */
  invalidate(): void {
    this.#cache.clear();
  }

  create(grant: GrantRecord): void {
    try {
      this.#stmt.insert.run(
        grant.grantId,
        grant.keyId,
        grant.granteePrincipal,
        grant.retiringPrincipal ?? null,
        JSON.stringify(grant),
      );
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw new StoreConflictError(`grant ${grant.grantId} exists`);
      throw err;
    }
    this.#cache.delete(grant.keyId);
  }

  get(grantId: string): GrantRecord | undefined {
    const row = this.#stmt.get.get(grantId);
    return row ? (JSON.parse(row.record) as GrantRecord) : undefined;
  }

  list(keyId: string, limit: number, after = "", grantee?: string): Page<GrantRecord> {
    const rows =
      grantee === undefined
        ? this.#stmt.page.all(keyId, after, limit + 1)
        : this.#stmt.pageOfGrantee.all(keyId, grantee, after, limit + 1);
    return toPage(rows, limit);
  }

  retirable(retiring: string, limit: number, after = ""): Page<GrantRecord> {
    return toPage(this.#stmt.retirable.all(retiring, after, limit + 1), limit);
  }

  of(keyId: string): readonly GrantRecord[] {
    // PRAGMA data_version costs about as much as a small query, so other processes'
    // grant writes are looked for at most every CHECK_MS; this process's own writes
    // drop the cache at once. (AWS grants are eventually consistent too.)
    const now = Date.now();
    if (now - this.#checkedAt >= CHECK_MS || now < this.#checkedAt) {
      this.#checkedAt = now;
      const version = this.#stmt.dataVersion.get() as number;
      if (version !== this.#dataVersion) {
        this.#cache.clear();
        this.#dataVersion = version;
      }
    }
    let grants = this.#cache.get(keyId);
    if (!grants) {
      grants = Object.freeze(
        this.#stmt.ofKey.all(keyId).map((r) => Object.freeze(JSON.parse(r.record) as GrantRecord)),
      );
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(keyId, grants);
    }
    return grants;
  }

  delete(grantId: string): boolean {
    const changed = this.#stmt.delete.run(grantId).changes > 0;
    if (changed) this.#cache.clear();
    return changed;
  }
}

function toPage(rows: Row[], limit: number): Page<GrantRecord> {
  const items = rows.slice(0, limit).map((r) => JSON.parse(r.record) as GrantRecord);
  return rows.length > limit ? { items, next: items[items.length - 1]!.grantId } : { items };
}
