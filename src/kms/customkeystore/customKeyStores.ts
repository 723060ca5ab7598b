/**
 * Custom key stores: AWS's CreateCustomKeyStore … DeleteCustomKeyStore state machine, with
 * each type's backing store behind `KeyStoreType` (AWS_CLOUDHSM: a PKCS#11 token,
 * cloudHsmKeyStore.ts; EXTERNAL_KEY_STORE: an XKS proxy, externalKeyStore.ts).
 *
 * ConnectionState (per process; what is stored is whether a store was last asked to connect):
 *
 *   DISCONNECTED ──Connect──▶ CONNECTING ──ok──▶ CONNECTED ──Disconnect──▶ DISCONNECTING ──▶ DISCONNECTED
 *                                 └──fails──▶ FAILED (ConnectionErrorCode) ──Disconnect──▶ …
 *
 * Connect is refused in DISCONNECTING and FAILED (disconnect first, as AWS); Disconnect in
 * DISCONNECTING and DISCONNECTED; Update (other than the name while CONNECTED) and Delete
 * need DISCONNECTED. A store asked to connect is connected again when the service starts.
 *
 * With several processes on one store (`keyhaven serve --workers`), what is stored rules:
 * each process connects its own session to a store that was asked to connect (by any
 * process), drops it when one was asked to disconnect, and follows creations, updates and
 * deletions, as soon as it sees another process's commit (repository.changedByOthers).
 * A backing store that goes away while CONNECTED stays CONNECTED (its connection
 * reconnects by itself) and its keys answer KeyUnavailableException meanwhile.
 */
import { randomBytes } from "node:crypto";
import type {
  ConnectionErrorCodeType,
  ConnectionStateType,
  CreateCustomKeyStoreRequest,
  CustomKeyStoresListEntry,
  CustomKeyStoreType,
  KeyMetadata,
  UpdateCustomKeyStoreRequest,
} from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import type { ExternalGcm } from "../crypto/ciphertext.js";
import type { XksSealed } from "../crypto/xksCiphertext.js";
import { kmsError } from "../errors.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import type { RootKey } from "../rootkey/rootKey.js";
import { StoreConflictError } from "../store/keyStore.js";
import {
  secretContext,
  type CustomKeyStoreRecord,
  type CustomKeyStoreRepository,
} from "./customKeyStoreRecord.js";

/** AWS's quota of custom key stores per account and Region. */
export const CUSTOM_KEY_STORE_LIMIT = 10;

/** The KMS request a backing store is used for (an XKS proxy's request metadata). */
export interface KeyStoreRequest {
  /** The caller's principal ARN. */
  readonly principal: string;
  /** The KMS operation, e.g. "Encrypt". */
  readonly operation: string;
  readonly requestId: string;
}

/** A new key's part in its backing store. */
export interface NewStoreKey {
  readonly keyId: string;
  readonly arn: string;
  /** EXTERNAL_KEY_STORE: the external key's id (CreateKey's XksKeyId). */
  readonly xksKeyId?: string;
}

/** EXTERNAL_KEY_STORE: the outer layer of double encryption, computed by the XKS proxy. */
export interface ExternalKeyLayer {
  encrypt(
    key: KeyRecord,
    plaintext: Buffer,
    aad: Buffer,
    request: KeyStoreRequest,
  ): Promise<XksSealed>;
  decrypt(
    key: KeyRecord,
    sealed: XksSealed,
    aad: Buffer,
    request: KeyStoreRequest,
  ): Promise<Buffer>;
}

/** A connected backing store: makes, uses and destroys keys that never leave it. */
export interface KeyStoreConnection {
  /** Creates (AWS_CLOUDHSM) or checks (EXTERNAL_KEY_STORE) the key inside the backing store. */
  createKey(key: NewStoreKey, request: KeyStoreRequest): Promise<void>;
  /** AWS_CLOUDHSM: AES-256-GCM under the key of `keyId`, computed by the backing store (the key has no material of its own). */
  gcm?(keyId: string): ExternalGcm;
  /** EXTERNAL_KEY_STORE: the key has material of its own; the proxy encrypts again over it. */
  readonly external?: ExternalKeyLayer;
  /** Destroys the key of `keyId` in the backing store (best effort, as AWS). */
  deleteKey(keyId: string): Promise<void>;
  close(): Promise<void>;
}

/** A connection attempt that failed, with AWS's ConnectionErrorCode. */
export class ConnectFailed extends Error {
  override name = "ConnectFailed";
  constructor(
    message: string,
    readonly code: ConnectionErrorCodeType,
  ) {
    super(message);
  }
}

/** What a custom key store type provides; the manager does the rest. */
export interface KeyStoreType {
  readonly type: CustomKeyStoreType;
  /** CreateCustomKeyStore's type-specific members, checked (KmsError otherwise): settings to store, and the secret to wrap. */
  create(
    input: CreateCustomKeyStoreRequest,
    others: readonly CustomKeyStoreRecord[],
  ): Promise<{ settings: Record<string, string>; secret?: string }>;
  /** UpdateCustomKeyStore's type-specific members: what changes; `changes` is false when only the name may change. */
  update(
    input: UpdateCustomKeyStoreRequest,
    record: CustomKeyStoreRecord,
    others: readonly CustomKeyStoreRecord[],
  ): Promise<{ settings?: Record<string, string>; secret?: string; changes: boolean }>;
  /** The type's members of a DescribeCustomKeyStores entry (never the secret). */
  describe(record: CustomKeyStoreRecord): Partial<CustomKeyStoresListEntry>;
  /** The type's members of a key's KeyMetadata (CloudHsmClusterId, XksKeyConfiguration, …). */
  keyMetadata(record: CustomKeyStoreRecord, key: KeyRecord): Partial<KeyMetadata>;
  /** Connects (throws ConnectFailed). */
  connect(record: CustomKeyStoreRecord, secret: string | undefined): Promise<KeyStoreConnection>;
}

interface Entry {
  record: CustomKeyStoreRecord;
  state: ConnectionStateType;
  errorCode?: ConnectionErrorCodeType;
  connection?: KeyStoreConnection;
  /** The pending connect, so that Disconnect can wait for it. */
  connecting?: Promise<void>;
}

export interface CustomKeyStoresOptions {
  readonly repository: CustomKeyStoreRepository;
  readonly rootKey: RootKey;
  readonly types: readonly KeyStoreType[];
  readonly now: () => number;
  readonly logger?: Logger;
}

const notFound = (id: string) =>
  kmsError("CustomKeyStoreNotFoundException", `Custom key store '${id}' does not exist.`);
const nameInUse = (name: string | undefined) =>
  kmsError("CustomKeyStoreNameInUseException", `A custom key store named '${name}' exists.`);
const invalidState = (entry: Entry, action: string) =>
  kmsError(
    "CustomKeyStoreInvalidStateException",
    `Custom key store '${entry.record.id}' is ${entry.state}; ${action}.`,
  );

export class CustomKeyStores {
  readonly #repository: CustomKeyStoreRepository;
  readonly #rootKey: RootKey;
  readonly #types: ReadonlyMap<string, KeyStoreType>;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #entries = new Map<string, Entry>();

  constructor(options: CustomKeyStoresOptions) {
    this.#repository = options.repository;
    this.#rootKey = options.rootKey;
    this.#types = new Map(options.types.map((t) => [t.type, t]));
    this.#now = options.now;
    this.#logger = options.logger;
  }

  /** Reads the stored custom key stores and connects those last asked to be connected (in the background). */
  async start(): Promise<void> {
    for (const record of await this.#repository.listCustomKeyStores()) {
      const entry: Entry = { record, state: "DISCONNECTED" };
      this.#entries.set(record.id, entry);
      if (record.connectRequested) this.#startConnecting(entry);
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map(async (e) => {
        await e.connecting;
        await e.connection?.close();
        delete e.connection;
      }),
    );
  }

  #type(type: string): KeyStoreType {
    const t = this.#types.get(type);
    if (!t)
      throw kmsError(
        "UnsupportedOperationException",
        `Custom key stores of type ${type} are not supported by Keyhaven; use ${[...this.#types.keys()].join(", ") || "none (no PKCS#11 module is configured)"}.`,
      );
    return t;
  }

  /** Follows what other processes changed in the repository (see the header). */
  #sync(): void {
    const records = this.#repository.changedByOthers?.();
    if (!records) return;
    const stored = new Set<string>();
    for (const record of records) {
      stored.add(record.id);
      const entry = this.#entries.get(record.id);
      if (!entry) {
        const added: Entry = { record, state: "DISCONNECTED" };
        this.#entries.set(record.id, added);
        if (record.connectRequested) this.#startConnecting(added);
        continue;
      }
      const wasRequested = entry.record.connectRequested;
      entry.record = record;
      if (record.connectRequested && !wasRequested && entry.state === "DISCONNECTED")
        this.#startConnecting(entry);
      else if (!record.connectRequested && wasRequested) void this.#drop(entry);
    }
    for (const [id, entry] of this.#entries)
      if (!stored.has(id)) {
        this.#entries.delete(id);
        void this.#drop(entry);
      }
  }

  /** Closes this process's session to a store another process disconnected or deleted. */
  async #drop(entry: Entry): Promise<void> {
    if (entry.state === "DISCONNECTED" || entry.state === "DISCONNECTING") return;
    entry.state = "DISCONNECTING";
    try {
      await entry.connecting;
      await entry.connection?.close();
    } catch (err) {
      this.#logger?.warn(
        { customKeyStoreId: entry.record.id, reason: (err as Error).message },
        "closing a custom key store session failed",
      );
    } finally {
      delete entry.connection;
      delete entry.errorCode;
      entry.state = "DISCONNECTED";
    }
  }

  #entry(id: string): Entry {
    this.#sync();
    const entry = this.#entries.get(id);
    if (!entry) throw notFound(id);
    return entry;
  }

  /** The type of a store (CreateKey checks that it matches the key's Origin). */
  typeOf(id: string): CustomKeyStoreType {
    return this.#entry(id).record.type;
  }

  async create(input: CreateCustomKeyStoreRequest): Promise<CustomKeyStoreRecord> {
    const type = this.#type(input.CustomKeyStoreType ?? "AWS_CLOUDHSM");
    const name = input.CustomKeyStoreName!;
    this.#sync();
    const others = [...this.#entries.values()].map((e) => e.record);
    if (others.some((r) => r.name === name)) throw nameInUse(name);
    if (others.length >= CUSTOM_KEY_STORE_LIMIT)
      throw kmsError(
        "LimitExceededException",
        `An account can have at most ${CUSTOM_KEY_STORE_LIMIT} custom key stores.`,
      );
    const { settings, secret } = await type.create(input, others);
    const id = `cks-${randomBytes(9).toString("hex").slice(0, 17)}`;
    const record: CustomKeyStoreRecord = {
      id,
      name,
      type: type.type,
      createdAt: this.#now(),
      connectRequested: false,
      settings,
      ...(secret !== undefined && { wrappedSecret: await this.#wrap(id, secret) }),
    };
    try {
      await this.#repository.createCustomKeyStore(record);
    } catch (err) {
      if (err instanceof StoreConflictError) throw nameInUse(name);
      throw err;
    }
    this.#entries.set(id, { record, state: "DISCONNECTED" });
    return record;
  }

  async #wrap(id: string, secret: string): Promise<Buffer> {
    const plain = Buffer.from(secret, "utf8");
    try {
      return await this.#rootKey.wrap(plain, secretContext(id));
    } finally {
      plain.fill(0);
    }
  }

  /** DescribeCustomKeyStores entries: one by id or by name, else all. */
  describe(filter: { id?: string; name?: string }): CustomKeyStoresListEntry[] {
    this.#sync();
    let entries = [...this.#entries.values()].sort((a, b) => (a.record.id < b.record.id ? -1 : 1));
    if (filter.id !== undefined) entries = [this.#entry(filter.id)];
    if (filter.name !== undefined) {
      entries = entries.filter((e) => e.record.name === filter.name);
      if (entries.length === 0) throw notFound(filter.name);
    }
    return entries.map((e) => ({
      CustomKeyStoreId: e.record.id,
      CustomKeyStoreName: e.record.name,
      CustomKeyStoreType: e.record.type,
      ...this.#type(e.record.type).describe(e.record),
      ConnectionState: e.state,
      ...(e.state === "FAILED" &&
        e.errorCode !== undefined && { ConnectionErrorCode: e.errorCode }),
      CreationDate: new Date(e.record.createdAt),
    }));
  }

  /** ConnectCustomKeyStore: starts connecting and returns at once. */
  async connect(id: string): Promise<void> {
    const entry = this.#entry(id);
    if (entry.state === "DISCONNECTING" || entry.state === "FAILED")
      throw invalidState(
        entry,
        "to reconnect a FAILED custom key store, disconnect it (DisconnectCustomKeyStore), then connect it",
      );
    if (entry.state !== "DISCONNECTED") return;
    await this.#setRequested(entry, true);
    this.#startConnecting(entry);
  }

  #startConnecting(entry: Entry): void {
    entry.state = "CONNECTING";
    delete entry.errorCode;
    const id = entry.record.id;
    entry.connecting = (async () => {
      try {
        const record = entry.record;
        const secret =
          record.wrappedSecret &&
          (await this.#rootKey.unwrap(record.wrappedSecret, secretContext(id)));
        try {
          entry.connection = await this.#type(record.type).connect(
            record,
            secret?.toString("utf8"),
          );
        } finally {
          secret?.fill(0);
        }
        entry.state = "CONNECTED";
        this.#logger?.info({ customKeyStoreId: id }, "custom key store connected");
      } catch (err) {
        entry.state = "FAILED";
        entry.errorCode = err instanceof ConnectFailed ? err.code : "INTERNAL_ERROR";
        this.#logger?.warn(
          {
            customKeyStoreId: id,
            connectionErrorCode: entry.errorCode,
            reason: err instanceof Error ? err.message : String(err),
          },
          "custom key store connection failed",
        );
      } finally {
        delete entry.connecting;
      }
    })();
  }

  async disconnect(id: string): Promise<void> {
    const entry = this.#entry(id);
    if (entry.state === "DISCONNECTING" || entry.state === "DISCONNECTED")
      throw invalidState(entry, "it is not connected");
    entry.state = "DISCONNECTING";
    try {
      await entry.connecting;
      await entry.connection?.close();
    } finally {
      delete entry.connection;
      delete entry.errorCode;
      entry.state = "DISCONNECTED";
    }
    await this.#setRequested(entry, false);
  }

  async #setRequested(entry: Entry, connectRequested: boolean): Promise<void> {
    if (entry.record.connectRequested === connectRequested) return;
    const record = { ...entry.record, connectRequested };
    if (!(await this.#repository.putCustomKeyStore(record))) throw notFound(record.id);
    entry.record = record;
  }

  async update(input: UpdateCustomKeyStoreRequest): Promise<void> {
    const entry = this.#entry(input.CustomKeyStoreId!);
    const others = [...this.#entries.values()].filter((e) => e !== entry).map((e) => e.record);
    const name = input.NewCustomKeyStoreName;
    if (name !== undefined && others.some((r) => r.name === name)) throw nameInUse(name);
    const { settings, secret, changes } = await this.#type(entry.record.type).update(
      input,
      entry.record,
      others,
    );
    if (entry.state !== "DISCONNECTED" && (changes || entry.state !== "CONNECTED"))
      throw invalidState(
        entry,
        "only its name can change while it is CONNECTED; disconnect it to change anything else",
      );
    const record: CustomKeyStoreRecord = {
      ...entry.record,
      ...(name !== undefined && { name }),
      ...(settings && { settings }),
      ...(secret !== undefined && { wrappedSecret: await this.#wrap(entry.record.id, secret) }),
    };
    try {
      if (!(await this.#repository.putCustomKeyStore(record))) throw notFound(record.id);
    } catch (err) {
      if (err instanceof StoreConflictError) throw nameInUse(name);
      throw err;
    }
    entry.record = record;
  }

  async delete(id: string): Promise<void> {
    const entry = this.#entry(id);
    if (entry.state !== "DISCONNECTED")
      throw invalidState(entry, "disconnect it (DisconnectCustomKeyStore) before deleting it");
    if ((await this.#repository.countKeysInCustomKeyStore(id)) > 0)
      throw kmsError(
        "CustomKeyStoreHasCMKsException",
        `Custom key store '${id}' contains KMS keys; delete them (ScheduleKeyDeletion) first.`,
      );
    await this.#repository.deleteCustomKeyStore(id);
    this.#entries.delete(id);
  }

  /**
   * XksKeyAlreadyInUseException when a KMS key of the store already uses `xksKeyId`: each
   * key of an external key store has an external key of its own, as in AWS.
   */
  async assertXksKeyFree(id: string, xksKeyId: string): Promise<void> {
    if ((await this.#repository.countKeysWithXksKey(id, xksKeyId)) > 0)
      throw kmsError(
        "XksKeyAlreadyInUseException",
        `The external key '${xksKeyId}' is already associated with a KMS key in custom key store '${id}'; each KMS key in an external key store needs an external key of its own.`,
      );
  }

  /** The connection to create a key in (CreateKey): the store must be CONNECTED. */
  connectionForNewKey(id: string): {
    record: CustomKeyStoreRecord;
    connection: KeyStoreConnection;
  } {
    const entry = this.#entry(id);
    if (entry.state !== "CONNECTED" || !entry.connection)
      throw invalidState(entry, "keys can be created only in a CONNECTED custom key store");
    return { record: entry.record, connection: entry.connection };
  }

  /** The connection that holds `key`, or KMSInvalidStateException while its store is not connected. */
  connectionFor(key: KeyRecord): KeyStoreConnection {
    this.#sync();
    const entry = this.#entries.get(key.customKeyStoreId ?? "");
    if (!entry?.connection || entry.state !== "CONNECTED")
      throw kmsError(
        "KMSInvalidStateException",
        `${key.arn} is unavailable: its custom key store ${key.customKeyStoreId} is ${entry?.state ?? "gone"}, not CONNECTED.`,
      );
    return entry.connection;
  }

  /** The key's KeyMetadata members from its custom key store (its id, the type's members, Unavailable while not connected). */
  keyMetadata(key: KeyRecord): Partial<KeyMetadata> {
    const id = key.customKeyStoreId;
    if (id === undefined) return {};
    this.#sync();
    const entry = this.#entries.get(id);
    const unavailable =
      entry?.state !== "CONNECTED" && (key.state === "Enabled" || key.state === "Disabled");
    return {
      CustomKeyStoreId: id,
      ...(entry && this.#types.get(entry.record.type)?.keyMetadata(entry.record, key)),
      ...(unavailable && { KeyState: "Unavailable", Enabled: false }),
    };
  }

  /** Best effort, as AWS: destroys a deleted key's backing key if its store is connected. */
  async forgetKey(key: KeyRecord): Promise<void> {
    this.#sync();
    const entry = this.#entries.get(key.customKeyStoreId ?? "");
    if (entry?.state !== "CONNECTED" || !entry.connection) return;
    try {
      await entry.connection.deleteKey(key.keyId);
    } catch (err) {
      this.#logger?.warn(
        { keyId: key.keyId, reason: err instanceof Error ? err.message : String(err) },
        "could not destroy a deleted key in its custom key store; remove it from the token by hand",
      );
    }
  }
}
