/**
 * `kubernetes` KeyStore: the store's state as Secrets in one namespace (the cluster's
 * etcd holds it), read from a watch-fed cache, written by compare-and-swap on
 * resourceVersion. Several replicas share one namespace. docs/high-availability.md has
 * the layout, the consistency windows and the failure modes; in short:
 *
 *   store-key-<keyId>       record + every material version (wrapped), so a rotation,
 *                           a re-import or a rewrap is one atomic CAS of one object
 *   store-alias-<sha256>    one alias: unique names by construction (the name is the object)
 *   store-grant-<grantId>   one grant
 *   store-import-<sha256>   one set of import parameters
 *   store-meta              the named values (root key id, STS session key)
 *
 * Aliases, grants and import parameters carry the label `keyhaven.dev/key-id`. Cross-object
 * rules hold by repair: deleting a key deletes the key object, then every object labelled
 * with it (read from the API server); a writer of an alias or grant re-reads its key from the
 * API server after its own create and removes what it made if the key is gone; and
 * `repairOrphans` (run by the timer lease holder) removes whatever a replica killed half-way
 * through a deletion left behind.
 */
import { createHash } from "node:crypto";
import { isConflict, isNotFound } from "../kube/errors.js";
import { STORE_LABEL, type StoreSecret, type StoreSecrets } from "../kube/storeSecrets.js";
import { nextDueAt } from "../kms/keys/dueDates.js";
import type { KeyMaterialRecord, KeyRecord } from "../kms/keys/keyRecord.js";
import {
  StoreConflictError,
  type AliasRecord,
  type GrantRecord,
  type ImportParametersRecord,
  type KeyCount,
  type KeyStore,
  type Page,
} from "../kms/store/keyStore.js";

export const KEY_ID_LABEL = "keyhaven.dev/key-id";
const META_NAME = "store-meta";
/** CAS attempts before a write gives up with StoreConflictError (each re-reads the object). */
const MAX_ATTEMPTS = 50;
/** Key ids as the service makes them (UUIDs, mrk-…): safe in an object name and a label. */
const SAFE_KEY_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const GRANT_ID = /^[0-9a-f]{64}$/;
/**
 * How long a key id the API server just said does not exist answers NotFound from memory
 * (so a stream of requests for unknown key ids costs one GET per id per second, not one
 * each). The watch clears an entry as soon as the key arrives; the TTL bounds how long a
 * broken watch could hide a key another replica created under an id this replica was
 * asked for before it existed (key ids are random UUIDs made at creation, so only a
 * guessed id can be asked for early). Writes re-read from the API server regardless.
 */
export const ABSENT_KEY_TTL_MS = 1000;
/** At most this many remembered unknown ids; the map is emptied when full. */
const MAX_ABSENT = 10_000;
const META_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const keyObject = (keyId: string) => (SAFE_KEY_ID.test(keyId) ? `store-key-${keyId}` : undefined);
const aliasObject = (name: string) => `store-alias-${sha256(name)}`;
const grantObject = (id: string) => (GRANT_ID.test(id) ? `store-grant-${id}` : undefined);
const importObject = (tokenId: string) => `store-import-${sha256(tokenId)}`;

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined) =>
  s === undefined ? undefined : Buffer.from(s, "base64").toString("utf8");
const json = (v: unknown) => b64(JSON.stringify(v));

/** resourceVersions are etcd revisions: later writes have larger numbers. */
function newer(a: string, b: string): boolean {
  try {
    return BigInt(a) > BigInt(b);
  } catch {
    return a !== b;
  }
}

type Kind = "key" | "alias" | "grant" | "import" | "meta";

interface KeyEntry {
  readonly rv: string;
  readonly record: KeyRecord;
  /** By version. */
  readonly materials: ReadonlyMap<number, KeyMaterialRecord>;
}

interface StoredMaterial {
  createdAt: number;
  wrapped: string;
  rotationType?: KeyMaterialRecord["rotationType"];
  materialId?: string;
}

/** What the cache holds of one object, so a removal finds its index entries. */
interface Held {
  readonly rv: string;
  readonly kind: Kind;
  readonly id: string;
  readonly keyId?: string;
}

function keyData(
  record: KeyRecord,
  materials: Iterable<KeyMaterialRecord>,
): Record<string, string> {
  const data: Record<string, string> = { record: json(record) };
  for (const m of materials) {
    const stored: StoredMaterial = {
      createdAt: m.createdAt,
      wrapped: m.wrapped.toString("base64"),
      ...(m.rotationType && { rotationType: m.rotationType }),
      ...(m.materialId && { materialId: m.materialId }),
    };
    data[`material.${m.version}`] = json(stored);
  }
  return data;
}

/** A store object as the store writes it: the Secret's name, labels and (base64) data. */
export interface StoreObject {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly data: Record<string, string>;
}

/** The object of a key with these material versions (undefined if the id cannot name one). */
export function keyStoreObject(
  record: KeyRecord,
  materials: Iterable<KeyMaterialRecord>,
): StoreObject | undefined {
  const name = keyObject(record.keyId);
  return name === undefined
    ? undefined
    : { name, labels: { [STORE_LABEL]: "key" }, data: keyData(record, materials) };
}

export function aliasStoreObject(alias: AliasRecord): StoreObject {
  return {
    name: aliasObject(alias.name),
    labels: { [STORE_LABEL]: "alias", [KEY_ID_LABEL]: alias.targetKeyId },
    data: { record: json(alias) },
  };
}

/** Undefined if the grant id cannot name an object. */
export function grantStoreObject(grant: GrantRecord): StoreObject | undefined {
  const name = grantObject(grant.grantId);
  return name === undefined
    ? undefined
    : {
        name,
        labels: { [STORE_LABEL]: "grant", [KEY_ID_LABEL]: grant.keyId },
        data: { record: json(grant) },
      };
}

export function importStoreObject(p: ImportParametersRecord): StoreObject {
  return {
    name: importObject(p.tokenId),
    labels: { [STORE_LABEL]: "import", [KEY_ID_LABEL]: p.keyId },
    data: { record: json({ ...p, wrappedPrivateKey: p.wrappedPrivateKey.toString("base64") }) },
  };
}

function decodeKey(s: StoreSecret): KeyEntry | undefined {
  const text = unb64(s.data?.["record"]);
  if (text === undefined) return undefined;
  const record = JSON.parse(text) as KeyRecord;
  if (typeof record.keyId !== "string") return undefined;
  const materials = new Map<number, KeyMaterialRecord>();
  for (const [field, value] of Object.entries(s.data ?? {})) {
    const m = /^material\.(\d+)$/.exec(field);
    if (!m) continue;
    const stored = JSON.parse(unb64(value)!) as StoredMaterial;
    const version = Number(m[1]);
    materials.set(version, {
      keyId: record.keyId,
      version,
      createdAt: stored.createdAt,
      wrapped: Buffer.from(stored.wrapped, "base64"),
      ...(stored.rotationType && { rotationType: stored.rotationType }),
      ...(stored.materialId && { materialId: stored.materialId }),
    });
  }
  return { rv: s.metadata.resourceVersion, record, materials };
}

function decodeRecord<T>(s: StoreSecret): T | undefined {
  const text = unb64(s.data?.["record"]);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

function page<T>(sorted: readonly T[], idOf: (t: T) => string, limit: number, after = ""): Page<T> {
  const rest = after === "" ? sorted : sorted.filter((t) => idOf(t) > after);
  const items = rest.slice(0, limit);
  return rest.length > limit ? { items, next: idOf(items[items.length - 1]!) } : { items };
}

const byId =
  <T>(idOf: (t: T) => string) =>
  (a: T, b: T) =>
    idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0;

export interface KubernetesKeyStoreOptions {
  /** Errors of the watch and of objects that do not decode (never their contents). */
  readonly onError?: (err: unknown) => void;
}

export class KubernetesKeyStore implements KeyStore {
  readonly #secrets: StoreSecrets;
  readonly #onError: (err: unknown) => void;
  /** Secret name → what the cache holds of it, or the last resourceVersion seen before it went. */
  readonly #held = new Map<string, Held>();
  readonly #gone = new Map<string, string>();
  readonly #keys = new Map<string, KeyEntry>();
  /** Key id → when the API server last said it does not exist (performance.now()). */
  readonly #absent = new Map<string, number>();
  readonly #aliases = new Map<string, AliasRecord>();
  readonly #grants = new Map<string, GrantRecord>();
  readonly #grantsByKey = new Map<string, readonly GrantRecord[]>();
  readonly #imports = new Map<string, ImportParametersRecord>();
  #meta: { rv: string; values: ReadonlyMap<string, string> } | undefined;
  readonly #dueListeners = new Set<(dueAt: number) => void>();

  private constructor(secrets: StoreSecrets, options: KubernetesKeyStoreOptions) {
    this.#secrets = secrets;
    this.#onError = options.onError ?? (() => {});
  }

  /** Opens the store: resolves once the first list has filled the cache. */
  static async open(
    secrets: StoreSecrets,
    options: KubernetesKeyStoreOptions = {},
  ): Promise<KubernetesKeyStore> {
    const store = new KubernetesKeyStore(secrets, options);
    secrets.informer.on((event, obj) => {
      if (event === "delete") store.#forget(obj.metadata.name, obj.metadata.resourceVersion);
      else store.#accept(obj);
    });
    await secrets.informer.start();
    return store;
  }

  // --- the cache ------------------------------------------------------------------------

  /** Takes `s` into the cache unless the cache already holds a later version (or its deletion). */
  #accept(s: StoreSecret): void {
    const name = s.metadata.name;
    const rv = s.metadata.resourceVersion;
    const seen = this.#held.get(name)?.rv ?? this.#gone.get(name);
    if (seen !== undefined && !newer(rv, seen)) return;
    const kind = s.metadata.labels?.[STORE_LABEL] as Kind | undefined;
    try {
      this.#unindex(name);
      this.#gone.delete(name);
      this.#index(name, rv, kind, s);
    } catch (err) {
      this.#onError(new Error(`store object ${name} does not decode: ${(err as Error).name}`));
    }
  }

  #index(name: string, rv: string, kind: Kind | undefined, s: StoreSecret): void {
    switch (kind) {
      case "key": {
        const entry = decodeKey(s);
        if (!entry) return;
        this.#keys.set(entry.record.keyId, entry);
        this.#absent.delete(entry.record.keyId);
        this.#held.set(name, { rv, kind, id: entry.record.keyId });
        const due = nextDueAt(entry.record);
        if (due !== undefined) for (const listener of this.#dueListeners) listener(due);
        return;
      }
      case "alias": {
        const alias = decodeRecord<AliasRecord>(s);
        if (!alias) return;
        this.#aliases.set(alias.name, alias);
        this.#held.set(name, { rv, kind, id: alias.name, keyId: alias.targetKeyId });
        return;
      }
      case "grant": {
        const grant = decodeRecord<GrantRecord>(s);
        if (!grant) return;
        this.#grants.set(grant.grantId, Object.freeze(grant));
        this.#held.set(name, { rv, kind, id: grant.grantId, keyId: grant.keyId });
        this.#regroupGrants(grant.keyId);
        return;
      }
      case "import": {
        const p = decodeRecord<ImportParametersRecord & { wrappedPrivateKey: string }>(s);
        if (!p) return;
        this.#imports.set(p.tokenId, {
          ...p,
          wrappedPrivateKey: Buffer.from(p.wrappedPrivateKey, "base64"),
        });
        this.#held.set(name, { rv, kind, id: p.tokenId, keyId: p.keyId });
        return;
      }
      case "meta": {
        const values = new Map<string, string>();
        for (const [k, v] of Object.entries(s.data ?? {})) values.set(k, unb64(v)!);
        this.#meta = { rv, values };
        this.#held.set(name, { rv, kind, id: name });
        return;
      }
      default:
        return;
    }
  }

  #unindex(name: string): void {
    const held = this.#held.get(name);
    if (!held) return;
    this.#held.delete(name);
    if (held.kind === "key") this.#keys.delete(held.id);
    else if (held.kind === "alias") this.#aliases.delete(held.id);
    else if (held.kind === "grant") {
      this.#grants.delete(held.id);
      this.#regroupGrants(held.keyId!);
    } else if (held.kind === "import") this.#imports.delete(held.id);
    else this.#meta = undefined;
  }

  /** Drops an object that was deleted at or after `rv` (unless the cache holds a later one). */
  #forget(name: string, rv?: string): void {
    const held = this.#held.get(name);
    if (held && rv !== undefined && newer(held.rv, rv)) return;
    this.#unindex(name);
    const last = rv ?? held?.rv;
    if (last !== undefined) this.#gone.set(name, last);
  }

  #regroupGrants(keyId: string): void {
    const grants = [...this.#grants.values()]
      .filter((g) => g.keyId === keyId)
      .sort(byId((g) => g.grantId));
    if (grants.length === 0) this.#grantsByKey.delete(keyId);
    else this.#grantsByKey.set(keyId, Object.freeze(grants));
  }

  /**
   * The key from the cache, else from the API server (a key another replica just made),
   * unless the API server said it does not exist less than ABSENT_KEY_TTL_MS ago.
   */
  async #key(keyId: string): Promise<KeyEntry | undefined> {
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const absentSince = this.#absent.get(keyId);
    if (absentSince !== undefined && performance.now() - absentSince < ABSENT_KEY_TTL_MS)
      return undefined;
    const entry = await this.#readKey(keyId);
    if (entry) this.#absent.delete(keyId);
    else if (keyObject(keyId)) {
      if (this.#absent.size >= MAX_ABSENT) this.#absent.clear();
      this.#absent.set(keyId, performance.now());
    }
    return entry;
  }

  /** For a write: the cache, else the API server (never the remembered absence). */
  async #keyToWrite(keyId: string): Promise<KeyEntry | undefined> {
    return this.#keys.get(keyId) ?? this.#readKey(keyId);
  }

  async #readKey(keyId: string): Promise<KeyEntry | undefined> {
    const name = keyObject(keyId);
    if (!name) return undefined;
    const s = await this.#secrets.get(name);
    if (!s) {
      this.#forget(name);
      return undefined;
    }
    this.#accept(s);
    return this.#keys.get(keyId) ?? decodeKey(s);
  }

  async #read(name: string): Promise<void> {
    const s = await this.#secrets.get(name);
    if (s) this.#accept(s);
    else this.#forget(name);
  }

  // --- keys -----------------------------------------------------------------------------

  async createKey(key: KeyRecord, material?: KeyMaterialRecord): Promise<void> {
    const o = keyStoreObject(key, material ? [material] : []);
    if (!o) throw new StoreConflictError(`key id ${key.keyId} cannot name a store object`);
    try {
      this.#accept(await this.#secrets.create(o.name, o.labels, o.data));
    } catch (err) {
      if (isConflict(err)) throw new StoreConflictError(`key ${key.keyId} exists`);
      throw err;
    }
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    return (await this.#key(keyId))?.record;
  }

  async listKeys(limit: number, after?: string): Promise<Page<KeyRecord>> {
    const ids = [...this.#keys.keys()].sort();
    const records = ids.map((id) => this.#keys.get(id)!.record);
    return page(records, (k) => k.keyId, limit, after);
  }

  async countKeys(): Promise<readonly KeyCount[]> {
    const counts = new Map<string, KeyCount>();
    for (const { record } of this.#keys.values()) {
      const id = `${record.state}\n${record.keySpec}`;
      const c = counts.get(id);
      counts.set(id, { state: record.state, keySpec: record.keySpec, count: (c?.count ?? 0) + 1 });
    }
    return [...counts.values()];
  }

  /**
   * The one read-modify-write of a key object: `change` gets the current record and
   * materials and returns the next ones (or throws to abort); a 409 re-reads the object
   * from the API server and runs `change` again.
   */
  async #casKey(
    keyId: string,
    change: (entry: KeyEntry) => { record: KeyRecord; materials: Iterable<KeyMaterialRecord> },
  ): Promise<KeyRecord | undefined> {
    const name = keyObject(keyId);
    if (!name) return undefined;
    let entry = await this.#keyToWrite(keyId);
    for (let attempt = 1; entry; attempt++) {
      const next = change(entry);
      try {
        const o = keyStoreObject(next.record, next.materials)!;
        const s = await this.#secrets.replace(name, entry.rv, o.labels, o.data);
        this.#accept(s);
        return next.record;
      } catch (err) {
        if (isNotFound(err)) {
          this.#forget(name);
          return undefined;
        }
        if (!isConflict(err)) throw err;
        if (attempt >= MAX_ATTEMPTS)
          throw new StoreConflictError(`key ${keyId} kept changing; try again`);
        entry = await this.#readKey(keyId);
      }
    }
    return undefined;
  }

  async updateKey(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#casKey(keyId, (e) => ({
      record: mutate(e.record),
      materials: e.materials.values(),
    }));
  }

  async updateKeyWithMaterial(
    keyId: string,
    material: KeyMaterialRecord,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#casKey(keyId, (e) => {
      const record = mutate(e.record);
      const existing = e.materials.get(material.version);
      if (existing && (existing.materialId ?? null) !== (material.materialId ?? null))
        throw new StoreConflictError(`material version ${material.version} of key ${keyId} exists`);
      const materials = new Map(e.materials);
      materials.set(
        material.version,
        existing
          ? { ...existing, createdAt: material.createdAt, wrapped: material.wrapped }
          : material,
      );
      return { record, materials: materials.values() };
    });
  }

  async updateKeyRemovingMaterial(
    keyId: string,
    mutate: (current: KeyRecord) => KeyRecord,
  ): Promise<KeyRecord | undefined> {
    return this.#casKey(keyId, (e) => ({ record: mutate(e.record), materials: [] }));
  }

  async addMaterial(m: KeyMaterialRecord): Promise<void> {
    const stored = await this.#casKey(m.keyId, (e) => {
      if (e.materials.has(m.version))
        throw new StoreConflictError(`material version ${m.version} of key ${m.keyId} exists`);
      return { record: e.record, materials: [...e.materials.values(), m] };
    });
    if (!stored) throw new StoreConflictError(`key ${m.keyId} does not exist`);
  }

  async getMaterial(keyId: string, version: number): Promise<KeyMaterialRecord | undefined> {
    return (await this.#key(keyId))?.materials.get(version);
  }

  async listMaterials(
    keyId: string,
    limit: number,
    afterVersion = 0,
  ): Promise<Page<KeyMaterialRecord>> {
    const entry = await this.#key(keyId);
    const all = [...(entry?.materials.values() ?? [])]
      .filter((m) => m.version > afterVersion)
      .sort((a, b) => a.version - b.version);
    const items = all.slice(0, limit);
    return all.length > limit
      ? { items, next: String(items[items.length - 1]!.version) }
      : { items };
  }

  async replaceWrappedMaterial(
    keyId: string,
    version: number,
    expected: Buffer,
    wrapped: Buffer,
  ): Promise<boolean> {
    class Unchanged extends Error {}
    try {
      const stored = await this.#casKey(keyId, (e) => {
        const m = e.materials.get(version);
        if (!m || !m.wrapped.equals(expected)) throw new Unchanged();
        const materials = new Map(e.materials);
        materials.set(version, { ...m, wrapped });
        return { record: e.record, materials: materials.values() };
      });
      return stored !== undefined;
    } catch (err) {
      if (err instanceof Unchanged) return false;
      throw err;
    }
  }

  /** Deletes the key object, then everything labelled with its id (read from the API server). */
  async deleteKey(keyId: string): Promise<boolean> {
    const name = keyObject(keyId);
    if (!name) return false;
    const deleted = await this.#secrets.delete(name);
    this.#forget(name);
    await this.#deleteDependents(keyId);
    return deleted;
  }

  async #deleteDependents(keyId: string): Promise<void> {
    for (const s of await this.#secrets.list(`${KEY_ID_LABEL}=${keyId}`)) {
      try {
        // The precondition keeps an alias another replica just pointed at a live key.
        await this.#secrets.delete(s.metadata.name, s.metadata.resourceVersion);
        this.#forget(s.metadata.name);
      } catch (err) {
        if (!isConflict(err)) throw err;
        await this.#read(s.metadata.name);
      }
    }
  }

  /**
   * Removes aliases, grants and import parameters whose key is gone (a replica killed
   * between deleting a key and its dependents leaves them). Idempotent; returns how many.
   */
  async repairOrphans(): Promise<number> {
    const orphaned = new Set<string>();
    for (const held of this.#held.values())
      if (held.keyId !== undefined && !this.#keys.has(held.keyId)) orphaned.add(held.keyId);
    let removed = 0;
    for (const keyId of orphaned) {
      if (await this.#readKey(keyId)) continue;
      const before = this.#held.size;
      await this.#deleteDependents(keyId);
      removed += before - this.#held.size;
    }
    return removed;
  }

  /** After creating `name` for `keyId`: if the key is gone on the API server, undo and refuse. */
  async #confirmKey(name: string, keyId: string, what: string): Promise<void> {
    if (await this.#readKey(keyId)) return;
    await this.#secrets.delete(name);
    this.#forget(name);
    throw new StoreConflictError(`${what}: key ${keyId} does not exist`);
  }

  // --- lifecycle timers -----------------------------------------------------------------

  async keysDue(until: number, limit: number): Promise<readonly KeyRecord[]> {
    const due: { at: number; record: KeyRecord }[] = [];
    for (const { record } of this.#keys.values()) {
      const at = nextDueAt(record);
      if (at !== undefined && at <= until) due.push({ at, record });
    }
    return due
      .sort((a, b) => a.at - b.at)
      .slice(0, limit)
      .map((d) => d.record);
  }

  async nextDueAt(): Promise<number | undefined> {
    let earliest: number | undefined;
    for (const { record } of this.#keys.values()) {
      const at = nextDueAt(record);
      if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest;
  }

  watchDueDates(listener: (dueAt: number) => void): () => void {
    this.#dueListeners.add(listener);
    return () => this.#dueListeners.delete(listener);
  }

  // --- import parameters ----------------------------------------------------------------

  async putImportParameters(p: ImportParametersRecord): Promise<void> {
    const o = importStoreObject(p);
    try {
      this.#accept(await this.#secrets.create(o.name, o.labels, o.data));
    } catch (err) {
      if (isConflict(err)) throw new StoreConflictError(`import token ${p.tokenId} exists`);
      throw err;
    }
    await this.#confirmKey(o.name, p.keyId, "import parameters");
  }

  async getImportParameters(tokenId: string): Promise<ImportParametersRecord | undefined> {
    if (!this.#imports.has(tokenId)) await this.#read(importObject(tokenId));
    return this.#imports.get(tokenId);
  }

  /** From the cache (import parameters are written and read on one replica within minutes). */
  async importParametersOf(keyId: string): Promise<readonly ImportParametersRecord[]> {
    return [...this.#imports.values()]
      .filter((p) => p.keyId === keyId)
      .sort(byId((p) => p.tokenId));
  }

  async deleteExpiredImportParameters(now: number): Promise<number> {
    let deleted = 0;
    for (const p of [...this.#imports.values()]) {
      if (p.expiresAt > now) continue;
      const name = importObject(p.tokenId);
      if (await this.#secrets.delete(name)) deleted++;
      this.#forget(name);
    }
    return deleted;
  }

  // --- aliases --------------------------------------------------------------------------

  async createAlias(alias: AliasRecord): Promise<void> {
    if (!(await this.#keyToWrite(alias.targetKeyId)))
      throw new StoreConflictError(`alias ${alias.name}: key ${alias.targetKeyId} does not exist`);
    const o = aliasStoreObject(alias);
    try {
      this.#accept(await this.#secrets.create(o.name, o.labels, o.data));
    } catch (err) {
      if (isConflict(err)) throw new StoreConflictError(`alias ${alias.name} exists`);
      throw err;
    }
    await this.#confirmKey(o.name, alias.targetKeyId, `alias ${alias.name}`);
  }

  async getAlias(name: string): Promise<AliasRecord | undefined> {
    if (!this.#aliases.has(name)) await this.#read(aliasObject(name));
    return this.#aliases.get(name);
  }

  async updateAlias(name: string, targetKeyId: string, updatedAt: number): Promise<boolean> {
    if (!(await this.#keyToWrite(targetKeyId)))
      throw new StoreConflictError(`alias ${name}: key ${targetKeyId} does not exist`);
    const object = aliasObject(name);
    for (let attempt = 1; ; attempt++) {
      const current = await this.getAlias(name);
      const rv = this.#held.get(object)?.rv;
      if (!current || rv === undefined) return false;
      try {
        const o = aliasStoreObject({ ...current, targetKeyId, updatedAt });
        this.#accept(await this.#secrets.replace(object, rv, o.labels, o.data));
        break;
      } catch (err) {
        if (isNotFound(err)) {
          this.#forget(object);
          return false;
        }
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await this.#read(object);
      }
    }
    await this.#confirmKey(object, targetKeyId, `alias ${name}`);
    return true;
  }

  async deleteAlias(name: string): Promise<boolean> {
    const object = aliasObject(name);
    const deleted = await this.#secrets.delete(object);
    this.#forget(object);
    return deleted;
  }

  async listAliases(
    limit: number,
    after?: string,
    targetKeyId?: string,
  ): Promise<Page<AliasRecord>> {
    const aliases = [...this.#aliases.values()]
      .filter((a) => targetKeyId === undefined || a.targetKeyId === targetKeyId)
      .sort(byId((a) => a.name));
    return page(aliases, (a) => a.name, limit, after);
  }

  async aliasesOf(keyId: string): Promise<readonly AliasRecord[]> {
    return (await this.listAliases(Number.MAX_SAFE_INTEGER, undefined, keyId)).items;
  }

  // --- grants ---------------------------------------------------------------------------

  async createGrant(grant: GrantRecord): Promise<void> {
    const o = grantStoreObject(grant);
    if (!o) throw new StoreConflictError(`grant id ${grant.grantId} cannot name a store object`);
    if (!(await this.#keyToWrite(grant.keyId)))
      throw new StoreConflictError(`grant: key ${grant.keyId} does not exist`);
    try {
      this.#accept(await this.#secrets.create(o.name, o.labels, o.data));
    } catch (err) {
      if (isConflict(err)) throw new StoreConflictError(`grant ${grant.grantId} exists`);
      throw err;
    }
    await this.#confirmKey(o.name, grant.keyId, "grant");
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const name = grantObject(grantId);
    if (!name) return undefined;
    if (!this.#grants.has(grantId)) await this.#read(name);
    return this.#grants.get(grantId);
  }

  async listGrants(
    keyId: string,
    limit: number,
    after?: string,
    granteePrincipal?: string,
  ): Promise<Page<GrantRecord>> {
    const grants = (this.#grantsByKey.get(keyId) ?? []).filter(
      (g) => granteePrincipal === undefined || g.granteePrincipal === granteePrincipal,
    );
    return page(grants, (g) => g.grantId, limit, after);
  }

  async listRetirableGrants(
    retiringPrincipal: string,
    limit: number,
    after?: string,
  ): Promise<Page<GrantRecord>> {
    const grants = [...this.#grants.values()]
      .filter((g) => g.retiringPrincipal === retiringPrincipal)
      .sort(byId((g) => g.grantId));
    return page(grants, (g) => g.grantId, limit, after);
  }

  async grantsOf(keyId: string): Promise<readonly GrantRecord[]> {
    return this.#grantsByKey.get(keyId) ?? [];
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    const name = grantObject(grantId);
    if (!name) return false;
    const deleted = await this.#secrets.delete(name);
    this.#forget(name);
    return deleted;
  }

  // --- meta -----------------------------------------------------------------------------

  async getMeta(name: string): Promise<string | undefined> {
    if (!this.#meta) await this.#read(META_NAME);
    return this.#meta?.values.get(name);
  }

  async setMeta(name: string, value: string): Promise<void> {
    await this.#writeMeta(name, () => value);
  }

  async initMeta(name: string, value: string): Promise<string> {
    return this.#writeMeta(name, (current) => current ?? value);
  }

  /** CAS on the meta object: `next` gets the current value (from the API server on a conflict). */
  async #writeMeta(name: string, next: (current: string | undefined) => string): Promise<string> {
    if (!META_KEY.test(name)) throw new StoreConflictError(`meta name ${name} is not allowed`);
    if (!this.#meta) await this.#read(META_NAME);
    for (let attempt = 1; ; attempt++) {
      const meta = this.#meta;
      const current = meta?.values.get(name);
      const value = next(current);
      if (value === current) return value;
      const data: Record<string, string> = {};
      for (const [k, v] of meta?.values ?? []) data[k] = b64(v);
      data[name] = b64(value);
      try {
        const labels = { [STORE_LABEL]: "meta" };
        this.#accept(
          meta
            ? await this.#secrets.replace(META_NAME, meta.rv, labels, data)
            : await this.#secrets.create(META_NAME, labels, data),
        );
        return value;
      } catch (err) {
        if (!(isConflict(err) || isNotFound(err)) || attempt >= MAX_ATTEMPTS) throw err;
        await this.#read(META_NAME);
      }
    }
  }

  async close(): Promise<void> {
    await this.#secrets.informer.stop();
  }
}
