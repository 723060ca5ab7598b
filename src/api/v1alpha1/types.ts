/**
 * The keyhaven.dev/v1alpha1 API: KmsKey, KmsAlias and KmsGrant (contracts in
 * DESIGN.md). The CRD schemas in ./schemas.ts are the machine-readable form and
 * crds/ is generated from them.
 */
export const GROUP = "keyhaven.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The finalizer every KmsKey, KmsAlias and KmsGrant carries while it owns something in the key service. */
export const FINALIZER = "keyhaven.dev/cleanup";
/** Tag that ties a key to the KmsKey that created it (the object's UID), so a retry adopts instead of duplicating. */
export const UID_TAG = "keyhaven.dev/uid";
/** Annotation on a KmsKey naming an existing key (id or ARN) to adopt instead of creating one. */
export const ADOPT_ANNOTATION = "keyhaven.dev/adopt-key-id";

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  generation: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration: number;
  /** RFC 3339; changes only when status flips. */
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface KubeObject<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type DeletionPolicy = "Delete" | "Retain";

export interface KmsKeySpec {
  description?: string;
  keySpec?: string;
  keyUsage?: string;
  origin?: string;
  /** The custom key store (`cks-…`) of an AWS_CLOUDHSM key; required with that origin, immutable. */
  customKeyStoreId?: string;
  /** A multi-Region primary key (immutable). */
  multiRegion?: boolean;
  /** A replica here of a multi-Region primary in another Region (immutable). */
  replicaOf?: { region: string; keyId: string };
  /** The external key of an EXTERNAL_KEY_STORE key (its XksKeyId); required with that origin, immutable. */
  xksKeyId?: string;
  enabled?: boolean;
  rotation?: {
    enabled?: boolean;
    periodDays?: number;
    /** Any new value (e.g. a timestamp) asks for one on-demand rotation. */
    rotateOnDemandRequest?: string;
  };
  deletion?: {
    pendingWindowDays?: number;
    policy?: DeletionPolicy;
    /** Schedule deletion while keeping the object; set back to false before the date to cancel. */
    requested?: boolean;
  };
  /** Key policy document (JSON). Absent: the key service's default policy. */
  policy?: string;
  tags?: Record<string, string>;
}

export interface KmsKeyStatus {
  keyId?: string;
  arn?: string;
  keyState?: string;
  keySpec?: string;
  keyUsage?: string;
  /** PRIMARY or REPLICA for a multi-Region key. */
  multiRegionKeyType?: string;
  primaryRegion?: string;
  currentVersion?: number;
  rotationEnabled?: boolean;
  rotationPeriodDays?: number;
  lastRotationTime?: string;
  nextRotationTime?: string;
  deletionDate?: string;
  /** The last spec.rotation.rotateOnDemandRequest that was honoured. */
  lastOnDemandRequest?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export type KmsKey = KubeObject<KmsKeySpec, KmsKeyStatus>;

export interface KmsAliasSpec {
  name?: string;
  targetKeyRef?: { name: string };
  targetKeyId?: string;
}

export interface KmsAliasStatus {
  /** The alias this object created and manages. */
  aliasName?: string;
  targetKeyId?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export type KmsAlias = KubeObject<KmsAliasSpec, KmsAliasStatus>;

// The operations a grant may allow are the key service's own list: one source for both.
import type { GrantOperation } from "../../kms/authz/grantOperations.js";

export interface KmsGrantSpec {
  keyRef?: { name: string };
  keyId?: string;
  granteePrincipal?: string;
  serviceAccountRef?: { namespace?: string; name: string };
  operations: GrantOperation[];
  constraints?: {
    encryptionContextEquals?: Record<string, string>;
    encryptionContextSubset?: Record<string, string>;
  };
  retiringPrincipal?: string;
}

export interface KmsGrantStatus {
  grantId?: string;
  keyArn?: string;
  granteePrincipal?: string;
  /** Digest of the grant's parameters; a different digest means revoke and recreate. */
  fingerprint?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export type KmsGrant = KubeObject<KmsGrantSpec, KmsGrantStatus>;

/** How far a KmsSecret's values may travel (docs/gitops-secrets.md): the encryption context names that place. */
export type SealingScope = "strict" | "namespace-wide" | "cluster-wide";

export interface KmsSecretSpec {
  keyRef?: { name: string };
  /** A key id, ARN or alias (the key the values were sealed under). */
  keyId?: string;
  /** Default strict: namespace, name and entry. */
  scope?: SealingScope;
  /** Entry name → sealed value (base64): a KMS ciphertext or an offline envelope. */
  encryptedData: Record<string, string>;
  template?: {
    type?: string;
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  };
  /** Delete (default): the Secret goes with the KmsSecret; Retain: it stays, no longer owned. */
  deletionPolicy?: DeletionPolicy;
}

export interface KmsSecretStatus {
  /** The key the values were last opened with. */
  keyArn?: string;
  /** Entry names (never values) in the Secret. */
  entries?: string[];
  observedGeneration?: number;
  conditions?: Condition[];
}

export type KmsSecret = KubeObject<KmsSecretSpec, KmsSecretStatus>;

export interface KindInfo {
  readonly kind: "KmsKey" | "KmsAlias" | "KmsGrant" | "KmsSecret";
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
}

export const KINDS = {
  KmsKey: { kind: "KmsKey", plural: "kmskeys", singular: "kmskey", shortNames: ["kmsk"] },
  KmsAlias: {
    kind: "KmsAlias",
    plural: "kmsaliases",
    singular: "kmsalias",
    shortNames: ["kmsa"],
  },
  KmsGrant: {
    kind: "KmsGrant",
    plural: "kmsgrants",
    singular: "kmsgrant",
    shortNames: ["kmsg"],
  },
  KmsSecret: {
    kind: "KmsSecret",
    plural: "kmssecrets",
    singular: "kmssecret",
    shortNames: ["kmss"],
  },
} as const satisfies Record<string, KindInfo>;

export type KindName = keyof typeof KINDS;

export interface ObjectsByKind {
  KmsKey: KmsKey;
  KmsAlias: KmsAlias;
  KmsGrant: KmsGrant;
  KmsSecret: KmsSecret;
}
