/**
 * The key store: keys, wrapped key material, aliases and tags. Two backends sit
 * behind this interface (sqlite now, kubernetes later). Every write is atomic, and
 * read-modify-write goes through `updateKey`, whose mutator may run more than once
 * (a backend retries it on a conflicting write), so it must be a pure function.
 */
import type { KeyMaterialRecord, KeyRecord, KeyState } from "../keys/keyRecord.js";

/** A wrapping key pair handed out by GetParametersForImport (valid 24 hours). */
export interface ImportParametersRecord {
  /** Random id carried inside the import token. */
  readonly tokenId: string;
  readonly keyId: string;
  readonly wrappingAlgorithm: string;
  readonly wrappingKeySpec: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The RSA private key (PKCS#8 DER) wrapped under the root key; it never leaves the service. */
  readonly wrappedPrivateKey: Buffer;
}

/** A grant on a key (same shape as authz/grants.ts `Grant`). */
export interface GrantRecord {
  /** 64 hex characters. */
  readonly grantId: string;
  readonly keyId: string;
  readonly name?: string;
  readonly granteePrincipal: string;
  readonly retiringPrincipal?: string;
  readonly issuingAccount: string;
  readonly operations: readonly string[];
  readonly constraints?: {
    readonly EncryptionContextEquals?: Readonly<Record<string, string>>;
    readonly EncryptionContextSubset?: Readonly<Record<string, string>>;
  };
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

export interface AliasRecord {
  /** `alias/...` */
  readonly name: string;
  readonly targetKeyId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface KeyCount {
  readonly state: KeyState;
  readonly keySpec: string;
  readonly count: number;
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
  /**
   * Creates a key with its first material version (none for EXTERNAL-origin keys, which
   * wait for an import); fails with StoreConflictError if the id exists.
   */
  createKey(key: KeyRecord, material?: KeyMaterialRecord): Promise<void>;
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
  /** How many keys there are by state and key spec (for /metrics: must not read every record). */
  countKeys(): Promise<readonly KeyCount[]>;
  /**
   * Removes a key with all its material, aliases and grants, for good. True if this call
   * removed it (of concurrent deleters, one gets true: the lifecycle reports a deletion once).
   */
  deleteKey(keyId: string): Promise<boolean>;

  addMaterial(material: KeyMaterialRecord): Promise<void>;
  getMaterial(keyId: string, version: number): Promise<KeyMaterialRecord | undefined>;
  /** Material versions of a key (wrapped bytes included), ascending, after `afterVersion`. */
  listMaterials(
    keyId: string,
    limit: number,
    afterVersion?: number,
  ): Promise<Page<KeyMaterialRecord>>;
  /**
   * In one atomic write: `mutate` the key (it may throw to abort), then store `material`
   * as a new version (a rotation) or over a row of the same version holding the same
   * material id (a re-import). A version never changes its material: any other clash
   * aborts with StoreConflictError. Returns the stored key, or undefined if there is none.
   */
  updateKeyWithMaterial(
    keyId: string,
    material: KeyMaterialRecord,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined>;
  /** In one atomic write: `mutate` the key and destroy all its material (imported material deletion/expiry). */
  /**
   * Swaps the wrapped bytes of one material version if they are still `expected`, in one
   * transaction (keyhaven rewrap: a version is under the old root key or the new, never lost).
   */
  replaceWrappedMaterial(
    keyId: string,
    version: number,
    expected: Buffer,
    wrapped: Buffer,
  ): Promise<boolean>;
  updateKeyRemovingMaterial(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined>;

  /**
   * Lifecycle timers. Each key has at most one due date, `nextDueAt(record)` from
   * src/kms/keys/dueDates.ts, kept with the record on every write.
   * `keysDue` returns keys whose due date is <= `until`, earliest first.
   */
  keysDue(until: number, limit: number): Promise<readonly KeyRecord[]>;
  /** The earliest due date of any key, if one has a timer. */
  nextDueAt(): Promise<number | undefined>;
  /** Calls `listener` with a key's due date after every committed write that leaves it one; returns an unsubscribe function. */
  watchDueDates(listener: (dueAt: number) => void): () => void;

  putImportParameters(parameters: ImportParametersRecord): Promise<void>;
  getImportParameters(tokenId: string): Promise<ImportParametersRecord | undefined>;
  /** Every set of import parameters the store holds for one key, by token id (migrate-store copies them). */
  importParametersOf(keyId: string): Promise<readonly ImportParametersRecord[]>;
  /** Removes import parameters that expired at or before `now`; returns how many. */
  deleteExpiredImportParameters(now: number): Promise<number>;

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

  // Grants (see src/kms/authz/grants.ts). Deleting a key deletes its grants.
  /** Fails with StoreConflictError if the grant id exists. */
  createGrant(grant: GrantRecord): Promise<void>;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants of a key ordered by id, optionally only those of one grantee. */
  listGrants(
    keyId: string,
    limit: number,
    after?: string,
    granteePrincipal?: string,
  ): Promise<Page<GrantRecord>>;
  /** Grants (of any key) that name `retiringPrincipal`, ordered by id. */
  listRetirableGrants(
    retiringPrincipal: string,
    limit: number,
    after?: string,
  ): Promise<Page<GrantRecord>>;
  /** All grants of a key; called on every request a policy does not allow, so backends cache it. */
  grantsOf(keyId: string): Promise<readonly GrantRecord[]>;
  /** Returns false if no such grant. */
  deleteGrant(grantId: string): Promise<boolean>;

  /** A small named value kept with the store (e.g. the root key's id). */
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;
  /**
   * Sets `name` only if it has no value yet, atomically across writers (replicas starting
   * together agree on one value); returns the value the store holds afterwards.
   */
  initMeta(name: string, value: string): Promise<string>;

  close(): Promise<void>;
}
