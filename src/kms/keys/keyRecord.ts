/**
 * The key model: a KMS key as stored, and one version of its key material. Stores
 * (store/) keep these records; the lifecycle (lifecycle/) and the operations act on
 * them; keys/dueDates.ts derives a key's timers from them.
 */
export type KeyState =
  | "Enabled"
  | "Disabled"
  | "PendingDeletion"
  | "PendingImport"
  // Multi-Region keys (docs/multi-region.md): while peers work, and a primary waiting for
  // its replicas to be deleted before its own waiting period starts.
  | "Creating"
  | "Updating"
  | "PendingReplicaDeletion";

/** A multi-Region key's relations, as this instance last learned them from the primary. */
export interface MultiRegionRecord {
  readonly primaryRegion: string;
  /** Regions of the replicas, in the order they were made. */
  readonly replicaRegions: readonly string[];
}

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

  // Lifecycle (see src/kms/lifecycle/): every timer is one of these stored dates.
  /** Automatic rotation switched on (symmetric AWS_KMS keys only). */
  readonly rotationEnabled?: boolean;
  /** Days between automatic rotations (90..2560), kept while rotation is off. */
  readonly rotationPeriodInDays?: number;
  /** Epoch milliseconds of the next automatic rotation; set while rotationEnabled. */
  readonly nextRotationAt?: number;
  /** How many RotateKeyOnDemand calls succeeded (AWS caps them per key). */
  readonly onDemandRotations?: number;
  /** EXTERNAL origin: fingerprint of the material first imported; a re-import must match it. */
  readonly importedMaterialId?: string;
  /** EXTERNAL origin: whether material is imported now (false after expiry or deletion). */
  readonly materialImported?: boolean;
  /** EXTERNAL origin: KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE, while imported. */
  readonly expirationModel?: string;
  /** EXTERNAL origin: epoch milliseconds at which the imported material expires. */
  readonly materialExpiresAt?: number;
  /**
   * AWS_CLOUDHSM origin: the custom key store whose token holds the key (it has no stored
   * material). EXTERNAL_KEY_STORE origin: the external key store whose proxy adds the outer layer.
   */
  readonly customKeyStoreId?: string;
  /** EXTERNAL_KEY_STORE origin: the external key's id at the XKS proxy (XksKeyConfiguration.Id). */
  readonly xksKeyId?: string;
  /** Multi-Region keys only (`mrk-` ids): the primary's Region and the replicas'. */
  readonly multiRegion?: MultiRegionRecord;
  /** Multi-Region keys: the state to return to when a Creating or Updating step completes. */
  readonly settledState?: KeyState;
}

export interface KeyMaterialRecord {
  readonly keyId: string;
  readonly version: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Key material wrapped under the root key; never stored in plaintext. */
  readonly wrapped: Buffer;
  /** How this version came to be: absent for the first, else AUTOMATIC or ON_DEMAND rotation. */
  readonly rotationType?: "AUTOMATIC" | "ON_DEMAND";
  /** Public, non-secret identifier of the material (64 hex), as AWS's KeyMaterialId. */
  readonly materialId?: string;
}
