/**
 * Spec defaults, applied in code as well as by the CRD schema: objects written
 * before a default existed, or read from a --seed folder, get the same values.
 */
import type { KmsAlias, KmsGrant, KmsKey, KmsKeySpec, KmsSecret } from "./types.js";

export interface ResolvedKeySpec {
  description: string;
  keySpec: string;
  keyUsage: string;
  origin: string;
  customKeyStoreId?: string;
  multiRegion: boolean;
  replicaOf?: { region: string; keyId: string };
  xksKeyId?: string;
  enabled: boolean;
  rotation: { enabled: boolean; periodDays: number; rotateOnDemandRequest?: string };
  deletion: { pendingWindowDays: number; policy: "Delete" | "Retain"; requested: boolean };
  policy?: string;
  tags: Record<string, string>;
}

/** AWS's default key usage for each key spec family. */
export function defaultKeyUsage(keySpec: string): string {
  if (keySpec.startsWith("HMAC_")) return "GENERATE_VERIFY_MAC";
  if (keySpec.startsWith("ECC_") || keySpec.startsWith("ML_DSA_")) return "SIGN_VERIFY";
  return "ENCRYPT_DECRYPT";
}

export function resolveKeySpec(spec: KmsKeySpec | undefined): ResolvedKeySpec {
  const s = spec ?? {};
  const keySpec = s.keySpec ?? "SYMMETRIC_DEFAULT";
  const rotation: ResolvedKeySpec["rotation"] = {
    enabled: s.rotation?.enabled ?? false,
    periodDays: s.rotation?.periodDays ?? 365,
  };
  if (s.rotation?.rotateOnDemandRequest !== undefined)
    rotation.rotateOnDemandRequest = s.rotation.rotateOnDemandRequest;
  return {
    description: s.description ?? "",
    keySpec,
    keyUsage: s.keyUsage ?? defaultKeyUsage(keySpec),
    origin: s.origin ?? "AWS_KMS",
    ...(s.customKeyStoreId !== undefined && { customKeyStoreId: s.customKeyStoreId }),
    multiRegion: s.multiRegion ?? false,
    ...(s.replicaOf !== undefined && {
      replicaOf: { region: s.replicaOf.region, keyId: s.replicaOf.keyId },
    }),
    ...(s.xksKeyId !== undefined && { xksKeyId: s.xksKeyId }),
    enabled: s.enabled ?? true,
    rotation,
    deletion: {
      pendingWindowDays: s.deletion?.pendingWindowDays ?? 30,
      policy: s.deletion?.policy ?? "Delete",
      requested: s.deletion?.requested ?? false,
    },
    ...(s.policy !== undefined && { policy: s.policy }),
    tags: { ...(s.tags ?? {}) },
  };
}

/** `alias/<namespace>/<name>`; dots (allowed in Kubernetes names, not in aliases) become underscores. */
export function aliasName(alias: KmsAlias): string {
  return (
    alias.spec.name ??
    `alias/${alias.metadata.namespace}/${alias.metadata.name}`.replace(/\./g, "_")
  );
}

/** The object a reference names, as namespace/name. */
export function keyRefOf(obj: KmsAlias | KmsGrant | KmsSecret): string | undefined {
  const ref =
    obj.kind === "KmsAlias"
      ? (obj as KmsAlias).spec.targetKeyRef
      : (obj as KmsGrant | KmsSecret).spec.keyRef;
  return ref ? `${obj.metadata.namespace}/${ref.name}` : undefined;
}

export const isKmsKey = (o: { kind: string }): o is KmsKey => o.kind === "KmsKey";
