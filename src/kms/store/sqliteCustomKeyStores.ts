/**
 * The custom_key_stores table of the sqlite store (CustomKeyStoreRepository). Keys name
 * their custom key store in their record (`customKeyStoreId`), which is how its keys are
 * counted.
 */
import type Database from "better-sqlite3";
import type {
  CustomKeyStoreRecord,
  CustomKeyStoreRepository,
} from "../customkeystore/customKeyStoreRecord.js";
import { StoreConflictError } from "./keyStore.js";

/** The migration that creates the table (appended to sqliteKeyStore's MIGRATIONS). */
export const CUSTOM_KEY_STORES_MIGRATION = `CREATE TABLE custom_key_stores (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     record TEXT NOT NULL,
     wrapped_secret BLOB) STRICT;`;

interface Row {
  record: string;
  wrapped_secret: Buffer | null;
}

const toRecord = (r: Row): CustomKeyStoreRecord =>
  Object.assign(
    JSON.parse(r.record) as Omit<CustomKeyStoreRecord, "wrappedSecret">,
    r.wrapped_secret !== null && { wrappedSecret: r.wrapped_secret },
  );

const toRow = ({ wrappedSecret, ...rest }: CustomKeyStoreRecord) =>
  [rest.id, rest.name, JSON.stringify(rest), wrappedSecret ?? null] as const;

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code?.startsWith("SQLITE_CONSTRAINT") === true;
}

export class SqliteCustomKeyStores implements CustomKeyStoreRepository {
  readonly #stmt;
  #seenVersion: number;
  #checkedThisTurn = false;

  constructor(db: Database.Database) {
    this.#stmt = {
      dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
      insert: db.prepare<[string, string, string, Buffer | null]>(
        "INSERT INTO custom_key_stores (id, name, record, wrapped_secret) VALUES (?, ?, ?, ?)",
      ),
      get: db.prepare<[string], Row>(
        "SELECT record, wrapped_secret FROM custom_key_stores WHERE id = ?",
      ),
      list: db.prepare<[], Row>("SELECT record, wrapped_secret FROM custom_key_stores ORDER BY id"),
      put: db.prepare<[string, string, Buffer | null, string]>(
        "UPDATE custom_key_stores SET name = ?, record = ?, wrapped_secret = ? WHERE id = ?",
      ),
      delete: db.prepare<[string]>("DELETE FROM custom_key_stores WHERE id = ?"),
      countKeys: db.prepare<[string], { count: number }>(
        "SELECT count(*) AS count FROM keys WHERE json_extract(record, '$.customKeyStoreId') = ?",
      ),
      countXksKeys: db.prepare<[string, string], { count: number }>(
        "SELECT count(*) AS count FROM keys WHERE json_extract(record, '$.customKeyStoreId') = ? AND json_extract(record, '$.xksKeyId') = ?",
      ),
    };
    this.#seenVersion = this.#stmt.dataVersion.get()!;
  }

  /**
   * Another process's commit to the file (any table: data_version says no more) makes the
   * records be read again; checked at most once per event-loop turn (~8 µs a check).
   */
  changedByOthers(): readonly CustomKeyStoreRecord[] | undefined {
    if (this.#checkedThisTurn) return undefined;
    this.#checkedThisTurn = true;
    setImmediate(() => {
      this.#checkedThisTurn = false;
    }).unref();
    const version = this.#stmt.dataVersion.get()!;
    if (version === this.#seenVersion) return undefined;
    this.#seenVersion = version;
    return this.#stmt.list.all().map(toRecord);
  }

  async createCustomKeyStore(record: CustomKeyStoreRecord): Promise<void> {
    try {
      this.#stmt.insert.run(...toRow(record));
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreConflictError(`custom key store ${record.id} or name exists`);
      throw err;
    }
  }

  async getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    const row = this.#stmt.get.get(id);
    return row && toRecord(row);
  }

  async listCustomKeyStores(): Promise<readonly CustomKeyStoreRecord[]> {
    return this.#stmt.list.all().map(toRecord);
  }

  async putCustomKeyStore(record: CustomKeyStoreRecord): Promise<boolean> {
    const [id, name, json, secret] = toRow(record);
    try {
      return this.#stmt.put.run(name, json, secret, id).changes === 1;
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflictError(`custom key store name exists`);
      throw err;
    }
  }

  async deleteCustomKeyStore(id: string): Promise<boolean> {
    return this.#stmt.delete.run(id).changes === 1;
  }

  async countKeysInCustomKeyStore(id: string): Promise<number> {
    return this.#stmt.countKeys.get(id)?.count ?? 0;
  }

  async countKeysWithXksKey(id: string, xksKeyId: string): Promise<number> {
    return this.#stmt.countXksKeys.get(id, xksKeyId)?.count ?? 0;
  }
}
