/**
 * The small typed interface the controller sees instead of @kubernetes/client-node.
 * Two implementations: clientNodeCluster.ts (a real API server) and
 * embedded/cluster.ts (the embedded API server of `serve --seed`, also used by tests).
 */
import type { KindName, KubeObject, ObjectsByKind } from "../api/v1alpha1/types.js";
import type { Informer } from "./informer.js";

export { isConflict, isNotFound, KubeApiError } from "./errors.js";

export interface EventInput {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

/** Reads and writes of the keyhaven custom resources. */
export interface ResourceClient {
  get<K extends KindName>(
    kind: K,
    namespace: string,
    name: string,
  ): Promise<ObjectsByKind[K] | undefined>;
  /**
   * Replaces metadata.finalizers, on the condition that the object is still at
   * obj.metadata.resourceVersion (409 otherwise). Returns the updated object, or
   * undefined when removing the last finalizer let the API server delete it.
   */
  setFinalizers<K extends KindName>(
    kind: K,
    obj: ObjectsByKind[K],
    finalizers: string[],
  ): Promise<ObjectsByKind[K] | undefined>;
  /** Writes the whole status through the status subresource (JSON merge patch). */
  patchStatus<K extends KindName>(
    kind: K,
    obj: ObjectsByKind[K],
    status: NonNullable<ObjectsByKind[K]["status"]>,
  ): Promise<ObjectsByKind[K]>;
  /** Records a core/v1 Event about the object; never fails the caller. */
  recordEvent(obj: KubeObject, event: EventInput): Promise<void>;
}

/** coordination.k8s.io/v1 Lease, the fields leader election uses. */
export interface LeaseRecord {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  /** RFC 3339 with microseconds (MicroTime). */
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

export interface StoredLease {
  readonly spec: LeaseRecord;
  readonly resourceVersion: string;
}

export interface LeaseClient {
  getLease(namespace: string, name: string): Promise<StoredLease | undefined>;
  /** 409 if it exists. */
  createLease(namespace: string, name: string, spec: LeaseRecord): Promise<StoredLease>;
  /** 409 if the lease changed since resourceVersion. */
  updateLease(
    namespace: string,
    name: string,
    spec: LeaseRecord,
    resourceVersion: string,
  ): Promise<StoredLease>;
}

/** An owner reference (metav1.OwnerReference), the fields the KmsSecret controller uses. */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
}

/** A core/v1 Secret: `data` values are base64, as the API carries them. */
export interface SecretObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly OwnerReference[];
  };
  readonly type?: string;
  readonly data?: Readonly<Record<string, string>>;
}

/** The Secrets that KmsSecrets own (create, replace at a resourceVersion, delete at a uid). */
export interface SecretClient {
  getSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
  createSecret(secret: SecretObject): Promise<SecretObject>;
  /** 409 if the Secret changed since secret.metadata.resourceVersion. */
  replaceSecret(secret: SecretObject): Promise<SecretObject>;
  /** Deletes the Secret if it is still the one with `uid` (precondition); absent is fine. */
  deleteSecret(namespace: string, name: string, uid: string): Promise<void>;
}

export interface Cluster extends ResourceClient, LeaseClient {
  /** A cache of one kind kept current by list+watch; see informer.ts. */
  informer<K extends KindName>(kind: K): Informer<ObjectsByKind[K]>;
  /** Secrets, where the cluster has them (not the embedded API server of `serve --seed`). */
  readonly secrets?: SecretClient;
}

/** A merge patch that turns status `before` into `after` (removed fields become null). */
export function statusMergePatch(before: unknown, after: object): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...after };
  if (typeof before === "object" && before !== null)
    for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
  return patch;
}
