/**
 * The key store: keys, wrapped key material, aliases and tags. Two backends sit
 * behind this interface (sqlite now, kubernetes later). Every write is atomic, and
 * read-modify-write goes through `updateKey`, whose mutator may run more than once
 * (a backend retries it on a conflicting write), so it must be a pure function.
 */
export type KeyState = "Enabled" | "Disabled" | "PendingDeletion" | "PendingImport";

export interface Tag {
  readonly TagKey: string;
  readonly TagValue: string;
}

export interface KeyRecord {
  readonly keyId: string;
  readonly arn: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly description: string;
  readonly keySpec: string;
  readonly keyUsage: string;
  readonly origin: string;
  readonly state: KeyState;
  /** Epoch milliseconds; set while PendingDeletion. */
  readonly deletionDate?: number;
  readonly pendingWindowInDays?: number;
  readonly policy: string;
  readonly tags: readonly Tag[];
  /** The material version new encryptions use. */
  readonly currentMaterialVersion: number;
}

export interface KeyMaterialRecord {
  readonly keyId: string;
  readonly version: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Key material wrapped under the root key; never stored in plaintext. */
  readonly wrapped: Buffer;
}

export interface AliasRecord {
  /** `alias/...` */
  readonly name: string;
  readonly targetKeyId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Opaque position after the last item, when more remain. */
  readonly next?: string;
}

export class StoreConflictError extends Error {
  override name = "StoreConflictError";
}

export interface KeyStore {
  /** Creates a key with its first material version; fails with StoreConflictError if the id exists. */
  createKey(key: KeyRecord, material: KeyMaterialRecord): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /** Keys ordered by id, starting after `after`. */
  listKeys(limit: number, after?: string): Promise<Page<KeyRecord>>;
  /**
   * Atomically replaces a key with `mutate(current)`. Returns the stored record, or
   * undefined if the key does not exist. Errors thrown by `mutate` abort the write.
   */
  updateKey(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined>;
  /** Removes a key with all its material and aliases, for good. */
  deleteKey(keyId: string): Promise<void>;

  addMaterial(material: KeyMaterialRecord): Promise<void>;
  getMaterial(keyId: string, version: number): Promise<KeyMaterialRecord | undefined>;

  /** Fails with StoreConflictError if the name is taken. */
  createAlias(alias: AliasRecord): Promise<void>;
  getAlias(name: string): Promise<AliasRecord | undefined>;
  /** Returns false if no such alias. */
  updateAlias(name: string, targetKeyId: string, updatedAt: number): Promise<boolean>;
  /** Returns false if no such alias. */
  deleteAlias(name: string): Promise<boolean>;
  /** Aliases ordered by name, optionally only those of one key. */
  listAliases(limit: number, after?: string, targetKeyId?: string): Promise<Page<AliasRecord>>;
  aliasesOf(keyId: string): Promise<readonly AliasRecord[]>;

  /** A small named value kept with the store (e.g. the root key's id). */
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;

  close(): Promise<void>;
}
