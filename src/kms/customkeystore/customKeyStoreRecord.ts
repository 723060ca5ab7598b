/**
 * Custom key stores as stored, and the small interface that stores them. Kept apart from
 * the KeyStore interface (src/kms/store/keyStore.ts) so that each KeyStore backend adds
 * custom key stores by implementing these few methods, not by growing every key method
 * (sqlite: src/kms/store/sqliteCustomKeyStores.ts).
 */
import type { CustomKeyStoreType } from "@aws-sdk/client-kms";

export interface CustomKeyStoreRecord {
  /** `cks-` and 17 hex digits, as AWS's. */
  readonly id: string;
  /** Unique among the account's custom key stores. */
  readonly name: string;
  readonly type: CustomKeyStoreType;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Whether it was last asked to be connected (ConnectCustomKeyStore) rather than disconnected: reconnected at start. */
  readonly connectRequested: boolean;
  /** The type's non-secret settings (AWS_CLOUDHSM: cloudHsmClusterId, trustAnchorCertificate). */
  readonly settings: Readonly<Record<string, string>>;
  /** The type's secret (AWS_CLOUDHSM: the KeyStorePassword, the token's PIN) wrapped under the root key. */
  readonly wrappedSecret?: Buffer;
}

export interface CustomKeyStoreRepository {
  /** Fails with StoreConflictError if the id or the name is taken. */
  createCustomKeyStore(record: CustomKeyStoreRecord): Promise<void>;
  getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined>;
  /** All of them, ordered by id (an account has at most a few: AWS's quota is 10). */
  listCustomKeyStores(): Promise<readonly CustomKeyStoreRecord[]>;
  /** Replaces the record with the same id; fails with StoreConflictError if the new name is taken. Returns false if there is none. */
  putCustomKeyStore(record: CustomKeyStoreRecord): Promise<boolean>;
  /** Returns false if there is none. */
  deleteCustomKeyStore(id: string): Promise<boolean>;
  /** How many KMS keys (in any state) live in the custom key store. */
  countKeysInCustomKeyStore(id: string): Promise<number>;
  /** How many KMS keys (in any state) of the custom key store use the external key `xksKeyId`. */
  countKeysWithXksKey(id: string, xksKeyId: string): Promise<number>;
  /**
   * Where several processes share the repository (`keyhaven serve --workers`): all records
   * when another process may have changed them since the last call, else undefined.
   */
  changedByOthers?(): readonly CustomKeyStoreRecord[] | undefined;
}

/** The root-key AAD that binds a custom key store's wrapped secret to it. */
export const secretContext = (id: string): string => `custom-key-store/${id}/secret`;
