/**
 * KmsSecret decisions (pure): the Secret a KmsSecret asks for, whether the one in the
 * cluster is it, whether this KmsSecret owns it, and what a failed Decrypt means as a
 * condition. Messages name entries and keys, never a value.
 */
import { API_VERSION, type KmsSecret } from "../../api/v1alpha1/types.js";
import type { OwnerReference, SecretObject } from "../../kube/cluster.js";
import type { Failure } from "../context.js";

export const isOwner = (ref: OwnerReference, obj: KmsSecret) =>
  ref.controller === true && ref.kind === "KmsSecret" && ref.uid === obj.metadata.uid;

/** Whether `secret` is controlled by this KmsSecret (its uid, not only its name). */
export const ownedBy = (secret: SecretObject, obj: KmsSecret): boolean =>
  (secret.metadata.ownerReferences ?? []).some((r) => isOwner(r, obj));

export function ownerReference(obj: KmsSecret): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: "KmsSecret",
    name: obj.metadata.name,
    uid: obj.metadata.uid,
    controller: true,
  };
}

/** The Secret for `obj` with `data` (entry → plaintext, base64 on the way out). */
export function desiredSecret(obj: KmsSecret, data: ReadonlyMap<string, Buffer>): SecretObject {
  const meta = obj.spec.template?.metadata;
  return {
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      labels: { ...(meta?.labels ?? {}) },
      annotations: { ...(meta?.annotations ?? {}) },
      ownerReferences: [ownerReference(obj)],
    },
    type: obj.spec.template?.type ?? "Opaque",
    data: Object.fromEntries([...data].map(([k, v]) => [k, v.toString("base64")])),
  };
}

const sameMap = (
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
) => {
  const x = a ?? {};
  const y = b ?? {};
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
};

export type SecretAction = "create" | "none" | "update" | "recreate";

/** What brings the cluster's Secret (owned, or absent) to `desired`. The type is immutable: recreate. */
export function decideSecret(
  current: SecretObject | undefined,
  desired: SecretObject,
): SecretAction {
  if (!current) return "create";
  if ((current.type ?? "Opaque") !== desired.type) return "recreate";
  const same =
    sameMap(current.data, desired.data) &&
    sameMap(current.metadata.labels, desired.metadata.labels) &&
    sameMap(current.metadata.annotations, desired.metadata.annotations);
  return same ? "none" : "update";
}

/** A Failure for an entry that did not open, from the key service's exception name. */
export function entryFailure(
  entry: string,
  key: string,
  scope: string,
  error: { name?: string; message: string },
): Failure | undefined {
  switch (error.name) {
    case "NotFoundException":
      return { reason: "KeyNotFound", message: `Key ${key} does not exist (entry ${entry}).` };
    case "AccessDeniedException":
      return {
        reason: "AccessDenied",
        message: `The key service denied opening entry ${entry} under ${key}: ${error.message}`,
      };
    case "DisabledException":
    case "KMSInvalidStateException":
    case "KeyUnavailableException":
      return {
        reason: "KeyUnavailable",
        message: `Key ${key} cannot decrypt now (entry ${entry}): ${error.name}: ${error.message}`,
      };
    case "InvalidCiphertextException":
    case "IncorrectKeyException":
    case "InvalidKeyUsageException":
    case "SealedValueError":
      return {
        reason: "DecryptFailed",
        message: `Entry ${entry} does not decrypt under ${key} with the ${scope} encryption context of this KmsSecret (sealed for another namespace, KmsSecret, entry or key?): ${error.name}.`,
      };
    default:
      return undefined;
  }
}
