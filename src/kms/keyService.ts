/**
 * The key service's state shared by all operations: where keys live, the root key
 * that wraps their material, time, randomness, and a cache of unwrapped material.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import type { Clock } from "../time.js";
import type { RandomSource } from "./crypto/random.js";
import * as nodeCrypto from "node:crypto";
import { parsePrivateKey, type ParsedKeyPair } from "./crypto/asymmetric.js";
import {
  runPrivateKeyCall,
  type PrivateKeyCall,
  type PrivateKeyWorkers,
} from "./crypto/privateKeyWorkers.js";
import type { RootKey } from "./rootkey/rootKey.js";
import type { KeyStore } from "./store/keyStore.js";
import type { KeyRecord } from "./keys/keyRecord.js";
import { kmsError } from "./errors.js";
import type { CustomKeyStores } from "./customkeystore/customKeyStores.js";
import type { PeerClient } from "./peering/peerClient.js";
import type { PeeringKey } from "./peering/peeringKey.js";

export interface KeyServiceOptions {
  readonly account: string;
  readonly region: string;
  readonly store: KeyStore;
  readonly rootKey: RootKey;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** How many unwrapped material versions to keep in memory. */
  readonly materialCacheSize?: number;
  /** Where RSA/ECC signing and RSA decryption run; on the event loop when absent. */
  readonly privateKeyWorkers?: PrivateKeyWorkers;
  /** Custom key stores (docs/hsm.md); without them, their operations are unsupported. */
  readonly customKeyStores?: CustomKeyStores;
  /** Other Regions' instances and this instance's peering key pair (multi-Region keys). */
  readonly peers?: PeerClient;
  readonly peeringKey?: PeeringKey;
}

export class KeyService {
  readonly account: string;
  readonly region: string;
  readonly partition = "aws";
  readonly store: KeyStore;
  readonly rootKey: RootKey;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly customKeyStores: CustomKeyStores | undefined;
  readonly peers: PeerClient | undefined;
  readonly peeringKey: PeeringKey | undefined;
  readonly #materials = new Map<string, KeyObject>();
  /** Parsed RSA/ECC key pairs by `${keyId}/${version}`: PEM/DER parsing per request costs ~20 signatures. */
  readonly #keyPairs = new Map<string, ParsedKeyPair>();
  readonly #cacheSize: number;
  readonly #workers: PrivateKeyWorkers | undefined;

  constructor(options: KeyServiceOptions) {
    this.account = options.account;
    this.region = options.region;
    this.store = options.store;
    this.rootKey = options.rootKey;
    this.clock = options.clock;
    this.random = options.random;
    this.customKeyStores = options.customKeyStores;
    this.peers = options.peers;
    this.peeringKey = options.peeringKey;
    this.#cacheSize = options.materialCacheSize ?? 10_000;
    this.#workers = options.privateKeyWorkers;
  }

  /**
   * Makes a private-key call (a signature, an RSA decryption) in a worker thread when
   * the service has them: milliseconds of RSA never stall the requests behind it.
   */
  async privateKeyCall(call: PrivateKeyCall): Promise<Buffer | undefined> {
    return this.#workers ? this.#workers.run(call) : runPrivateKeyCall(nodeCrypto, call);
  }

  keyArn(keyId: string): string {
    return `arn:${this.partition}:kms:${this.region}:${this.account}:key/${keyId}`;
  }

  aliasArn(aliasName: string): string {
    return `arn:${this.partition}:kms:${this.region}:${this.account}:${aliasName}`;
  }

  /** The root-key AAD that binds wrapped material to its key and version. */
  static materialContext(keyId: string, version: number): string {
    return `material/${keyId}/${version}`;
  }

  wrapMaterial(keyId: string, version: number, material: Buffer): Promise<Buffer> {
    return this.rootKey.wrap(material, KeyService.materialContext(keyId, version));
  }

  /** The symmetric material of one version of a key, unwrapped once and then served from memory. */
  symmetricKey(key: KeyRecord, version: number): Promise<KeyObject> {
    return this.#parsedMaterial(this.#materials, key, version, createSecretKey);
  }

  /**
   * The private and public key of an asymmetric key (material: PKCS#8 DER, see
   * crypto/asymmetric.ts), unwrapped and parsed once, then served from memory.
   */
  keyPair(key: KeyRecord, version = key.currentMaterialVersion): Promise<ParsedKeyPair> {
    return this.#parsedMaterial(this.#keyPairs, key, version, parsePrivateKey);
  }

  /**
   * Unwraps one material version, parses it, wipes the raw bytes and caches the parsed
   * form (bounded, oldest out first): unwrapping and parsing cost far more than a request.
   */
  async #parsedMaterial<T>(
    cache: Map<string, T>,
    key: KeyRecord,
    version: number,
    parse: (raw: Buffer) => T,
  ): Promise<T> {
    const cacheKey = `${key.keyId}/${version}`;
    const cached = cache.get(cacheKey);
    if (cached) return cached;
    const record = await this.store.getMaterial(key.keyId, version);
    if (!record) {
      throw kmsError(
        "KMSInternalException",
        `Key material version ${version} of ${key.arn} is missing.`,
      );
    }
    const raw = await this.rootKey.unwrap(
      record.wrapped,
      KeyService.materialContext(key.keyId, version),
    );
    const parsed = parse(raw);
    raw.fill(0);
    if (cache.size >= this.#cacheSize) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, parsed);
    return parsed;
  }

  /** Drops cached material of a key (after its material is deleted or replaced). */
  forgetMaterial(keyId: string): void {
    for (const k of this.#materials.keys())
      if (k.startsWith(`${keyId}/`)) this.#materials.delete(k);
    for (const k of this.#keyPairs.keys()) if (k.startsWith(`${keyId}/`)) this.#keyPairs.delete(k);
  }
}
