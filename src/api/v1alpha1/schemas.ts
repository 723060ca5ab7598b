/**
 * The CRDs of keyhaven.dev/v1alpha1 as data: structural OpenAPI v3 schemas with
 * enums, ranges and defaults, CEL rules for immutability and one-of choices, the
 * status subresource, printer columns, short names and categories. crds/*.yaml is
 * generated from here (see writeCrds) and a test keeps the two identical.
 */
// The operations a grant may allow are the key service's own list: one source for both.
import { GRANT_OPERATIONS } from "../../kms/authz/grantOperations.js";
import { GROUP, KINDS, VERSION, type KindName } from "./types.js";

/** The subset of OpenAPI v3 (+ Kubernetes extensions) the CRDs use. */
export interface Schema {
  type?: "object" | "array" | "string" | "integer" | "boolean";
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema;
  maxProperties?: number;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  enum?: string[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
  default?: unknown;
  "x-kubernetes-validations"?: { rule: string; message: string }[];
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
}

const immutable = (field: string) => [
  { rule: "self == oldSelf", message: `${field} is immutable` },
];
const str = (description: string, extra: Schema = {}): Schema => ({
  type: "string",
  description,
  ...extra,
});
const stringMap = (description: string, maxProperties: number, maxValue: number): Schema => ({
  type: "object",
  description,
  maxProperties,
  additionalProperties: { type: "string", maxLength: maxValue },
});

const conditions: Schema = {
  type: "array",
  description: "metav1.Condition list: Ready plus specific conditions.",
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
  items: {
    type: "object",
    required: ["type", "status", "lastTransitionTime", "reason", "message"],
    properties: {
      type: { type: "string", maxLength: 316 },
      status: { type: "string", enum: ["True", "False", "Unknown"] },
      observedGeneration: { type: "integer", minimum: 0 },
      lastTransitionTime: { type: "string", format: "date-time" },
      reason: { type: "string", maxLength: 1024, minLength: 1 },
      message: { type: "string", maxLength: 32768 },
    },
  },
};

export const KEY_SPECS = [
  "SYMMETRIC_DEFAULT",
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
  "ECC_NIST_EDWARDS25519",
  "HMAC_224",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "ML_DSA_44",
  "ML_DSA_65",
  "ML_DSA_87",
  "SM2",
];

const kmsKeySpec: Schema = {
  type: "object",
  default: {},
  "x-kubernetes-validations": [
    {
      rule: "!has(oldSelf.keyUsage) || (has(self.keyUsage) && self.keyUsage == oldSelf.keyUsage)",
      message: "keyUsage is immutable once set",
    },
    {
      rule: "has(self.customKeyStoreId) == (has(self.origin) && self.origin in ['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'])",
      message:
        "customKeyStoreId goes with origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE, and only with them",
    },
    {
      rule: "has(self.xksKeyId) == (has(self.origin) && self.origin == 'EXTERNAL_KEY_STORE')",
      message: "xksKeyId goes with origin EXTERNAL_KEY_STORE, and only with it",
    },
    {
      rule: "!(has(self.replicaOf) && has(self.multiRegion) && self.multiRegion)",
      message: "replicaOf declares a replica; multiRegion: true a primary: set one or the other",
    },
    {
      rule: "has(self.replicaOf) == has(oldSelf.replicaOf)",
      message: "replicaOf is immutable: it can be neither added nor removed",
    },
    {
      rule: "!has(self.replicaOf) || !has(self.origin) || self.origin != 'AWS_CLOUDHSM'",
      message: "a replica's origin is its primary's (AWS_KMS or EXTERNAL)",
    },
  ],
  properties: {
    description: str("Key description.", { maxLength: 8192 }),
    multiRegion: {
      type: "boolean",
      description:
        "true: a multi-Region primary key (mrk-...) that other Regions (Keyhaven instances) can replicate (docs/multi-region.md). Immutable.",
      default: false,
      "x-kubernetes-validations": immutable("multiRegion"),
    },
    replicaOf: {
      type: "object",
      description:
        "Makes this key a replica, in this cluster's Region, of a multi-Region primary in another Region (a peer instance); keySpec, keyUsage and origin must be the primary's. Immutable.",
      required: ["region", "keyId"],
      "x-kubernetes-validations": immutable("replicaOf"),
      properties: {
        region: str("The primary's Region (a --peer of this cluster's key service).", {
          pattern: "^([a-z]+-){2,3}[0-9]+$",
          maxLength: 32,
        }),
        keyId: str("The primary's key id (mrk-...).", { pattern: "^mrk-[0-9a-f]{32}$" }),
      },
    },
    keySpec: str("AWS KeySpec. Immutable.", {
      enum: KEY_SPECS,
      default: "SYMMETRIC_DEFAULT",
      "x-kubernetes-validations": immutable("keySpec"),
    }),
    keyUsage: str("AWS KeyUsage; default from keySpec. Immutable.", {
      enum: ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"],
      "x-kubernetes-validations": immutable("keyUsage"),
    }),
    origin: str("Where the key material comes from. Immutable.", {
      enum: ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"],
      default: "AWS_KMS",
      "x-kubernetes-validations": immutable("origin"),
    }),
    customKeyStoreId: str(
      "The custom key store (cks-...) that holds an AWS_CLOUDHSM key (docs/hsm.md) or an EXTERNAL_KEY_STORE key (docs/external-key-stores.md). Required with those origins. Immutable.",
      {
        minLength: 1,
        maxLength: 64,
        "x-kubernetes-validations": immutable("customKeyStoreId"),
      },
    ),
    xksKeyId: str(
      "The external key's id at the external key store's XKS proxy (AES-256, for encrypt and decrypt). Required with origin EXTERNAL_KEY_STORE. Immutable.",
      {
        minLength: 1,
        maxLength: 128,
        pattern: "^[a-zA-Z0-9._-]+$",
        "x-kubernetes-validations": immutable("xksKeyId"),
      },
    ),
    enabled: { type: "boolean", description: "Enabled (true) or Disabled (false).", default: true },
    rotation: {
      type: "object",
      default: {},
      description: "Automatic rotation of symmetric keys.",
      properties: {
        enabled: { type: "boolean", default: false },
        periodDays: { type: "integer", minimum: 90, maximum: 2560, default: 365 },
        rotateOnDemandRequest: str(
          "Change to any new value (e.g. the current time) to rotate once now.",
          { maxLength: 64 },
        ),
      },
    },
    deletion: {
      type: "object",
      default: {},
      description: "What deleting the object does, and declarative scheduled deletion.",
      properties: {
        pendingWindowDays: { type: "integer", minimum: 7, maximum: 30, default: 30 },
        policy: str("Delete schedules key deletion; Retain leaves the key.", {
          enum: ["Delete", "Retain"],
          default: "Delete",
        }),
        requested: {
          type: "boolean",
          default: false,
          description:
            "true schedules deletion while keeping the object; false again before the date cancels it.",
        },
      },
    },
    policy: str("Key policy document (JSON).", { minLength: 1, maxLength: 131072 }),
    tags: stringMap("Tags applied to the key.", 48, 256),
  },
};

const kmsKeyStatus: Schema = {
  type: "object",
  properties: {
    keyId: { type: "string" },
    arn: { type: "string" },
    keyState: { type: "string" },
    keySpec: { type: "string" },
    keyUsage: { type: "string" },
    multiRegionKeyType: { type: "string", description: "PRIMARY or REPLICA (multi-Region keys)." },
    primaryRegion: { type: "string", description: "The Region of a multi-Region key's primary." },
    currentVersion: { type: "integer" },
    rotationEnabled: { type: "boolean" },
    rotationPeriodDays: { type: "integer" },
    lastRotationTime: { type: "string", format: "date-time" },
    nextRotationTime: { type: "string", format: "date-time" },
    deletionDate: { type: "string", format: "date-time" },
    lastOnDemandRequest: { type: "string" },
    observedGeneration: { type: "integer" },
    conditions,
  },
};

const nameRef: Schema = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string", minLength: 1, maxLength: 253 } },
};

const kmsAliasSpec: Schema = {
  type: "object",
  "x-kubernetes-validations": [
    {
      rule: "has(self.targetKeyRef) != has(self.targetKeyId)",
      message: "set exactly one of targetKeyRef and targetKeyId",
    },
  ],
  properties: {
    name: str("Alias name; default alias/<namespace>/<metadata.name>.", {
      pattern: "^alias/[a-zA-Z0-9/_-]+$",
      maxLength: 256,
      "x-kubernetes-validations": [
        { rule: "!self.startsWith('alias/aws/')", message: "alias/aws/ is reserved for AWS" },
      ],
    }),
    targetKeyRef: { ...nameRef, description: "A KmsKey in the same namespace." },
    targetKeyId: str("Key id or key ARN.", { minLength: 1, maxLength: 2048 }),
  },
};

const kmsAliasStatus: Schema = {
  type: "object",
  properties: {
    aliasName: { type: "string" },
    targetKeyId: { type: "string" },
    observedGeneration: { type: "integer" },
    conditions,
  },
};

const principal = (description: string): Schema =>
  str(description, { pattern: "^[\\w+=,.@:/-]+$", minLength: 1, maxLength: 256 });

const kmsGrantSpec: Schema = {
  type: "object",
  required: ["operations"],
  "x-kubernetes-validations": [
    { rule: "has(self.keyRef) != has(self.keyId)", message: "set exactly one of keyRef and keyId" },
    {
      rule: "has(self.granteePrincipal) != has(self.serviceAccountRef)",
      message: "set exactly one of granteePrincipal and serviceAccountRef",
    },
  ],
  properties: {
    keyRef: { ...nameRef, description: "A KmsKey in the same namespace." },
    keyId: str("Key id or key ARN.", { minLength: 1, maxLength: 2048 }),
    granteePrincipal: principal("Principal ARN the grant is for."),
    serviceAccountRef: {
      type: "object",
      required: ["name"],
      description: "A ServiceAccount whose web-identity principal is the grantee.",
      properties: {
        namespace: { type: "string", maxLength: 63 },
        name: { type: "string", minLength: 1, maxLength: 253 },
      },
    },
    operations: {
      type: "array",
      minItems: 1,
      maxItems: GRANT_OPERATIONS.length,
      "x-kubernetes-list-type": "set",
      items: { type: "string", enum: [...GRANT_OPERATIONS] },
    },
    constraints: {
      type: "object",
      "x-kubernetes-validations": [
        {
          rule: "!(has(self.encryptionContextEquals) && has(self.encryptionContextSubset))",
          message: "use encryptionContextEquals or encryptionContextSubset, not both",
        },
      ],
      properties: {
        encryptionContextEquals: stringMap("Exact encryption context.", 8, 384),
        encryptionContextSubset: stringMap("Pairs the encryption context must include.", 8, 384),
      },
    },
    retiringPrincipal: principal("Principal allowed to retire the grant."),
  },
};

const kmsGrantStatus: Schema = {
  type: "object",
  properties: {
    grantId: { type: "string" },
    keyArn: { type: "string" },
    granteePrincipal: { type: "string" },
    fingerprint: { type: "string" },
    observedGeneration: { type: "integer" },
    conditions,
  },
};

const kmsSecretSpec: Schema = {
  type: "object",
  required: ["encryptedData"],
  "x-kubernetes-validations": [
    { rule: "has(self.keyRef) != has(self.keyId)", message: "set exactly one of keyRef and keyId" },
  ],
  properties: {
    keyRef: { ...nameRef, description: "A KmsKey in the same namespace." },
    keyId: str("Key id, key ARN or alias the values were sealed under.", {
      minLength: 1,
      maxLength: 2048,
    }),
    scope: str(
      "What the encryption context binds each value to: strict (namespace, name, entry), namespace-wide, cluster-wide.",
      { enum: ["strict", "namespace-wide", "cluster-wide"], default: "strict" },
    ),
    encryptedData: {
      type: "object",
      description:
        "Secret entry name → sealed value (base64): a KMS ciphertext or an offline envelope (docs/gitops-secrets.md).",
      maxProperties: 256,
      additionalProperties: { type: "string", minLength: 1, maxLength: 1048576 },
    },
    template: {
      type: "object",
      description: "The Secret's type, labels and annotations.",
      properties: {
        type: str("Secret type (default Opaque).", { minLength: 1, maxLength: 253 }),
        metadata: {
          type: "object",
          properties: {
            labels: stringMap("Labels of the Secret.", 64, 63),
            annotations: stringMap("Annotations of the Secret.", 64, 4096),
          },
        },
      },
    },
    deletionPolicy: str(
      "Delete: deleting the KmsSecret deletes its Secret. Retain: the Secret stays, no longer owned.",
      { enum: ["Delete", "Retain"], default: "Delete" },
    ),
  },
};

const kmsSecretStatus: Schema = {
  type: "object",
  properties: {
    keyArn: { type: "string" },
    entries: { type: "array", items: { type: "string" }, "x-kubernetes-list-type": "atomic" },
    observedGeneration: { type: "integer" },
    conditions,
  },
};

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "boolean" | "date";
  jsonPath: string;
  priority?: number;
  description?: string;
}

const ready: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
};
const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

const definitions: Record<KindName, { spec: Schema; status: Schema; columns: PrinterColumn[] }> = {
  KmsKey: {
    spec: kmsKeySpec,
    status: kmsKeyStatus,
    columns: [
      { name: "Key ID", type: "string", jsonPath: ".status.keyId" },
      { name: "State", type: "string", jsonPath: ".status.keyState" },
      { name: "Rotation", type: "boolean", jsonPath: ".status.rotationEnabled" },
      // Future dates as "string": a "date" column prints an age, and "<invalid>" for the future.
      { name: "Next Rotation", type: "string", jsonPath: ".status.nextRotationTime" },
      ready,
      age,
      { name: "Deletion", type: "string", jsonPath: ".status.deletionDate", priority: 1 },
      { name: "Version", type: "integer", jsonPath: ".status.currentVersion", priority: 1 },
    ],
  },
  KmsAlias: {
    spec: kmsAliasSpec,
    status: kmsAliasStatus,
    columns: [
      { name: "Alias", type: "string", jsonPath: ".status.aliasName" },
      { name: "Target", type: "string", jsonPath: ".status.targetKeyId" },
      ready,
      age,
    ],
  },
  KmsGrant: {
    spec: kmsGrantSpec,
    status: kmsGrantStatus,
    columns: [
      { name: "Grant ID", type: "string", jsonPath: ".status.grantId", priority: 1 },
      { name: "Grantee", type: "string", jsonPath: ".status.granteePrincipal" },
      ready,
      age,
    ],
  },
  KmsSecret: {
    spec: kmsSecretSpec,
    status: kmsSecretStatus,
    columns: [
      { name: "Scope", type: "string", jsonPath: ".spec.scope" },
      ready,
      {
        name: "Reason",
        type: "string",
        jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      },
      age,
      { name: "Key", type: "string", jsonPath: ".status.keyArn", priority: 1 },
    ],
  },
};

/** The top-level object schema of a kind (what the API server validates a write against). */
export function objectSchema(kind: KindName): Schema {
  const d = definitions[kind];
  return {
    type: "object",
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec: d.spec,
      status: d.status,
    },
    ...(kind !== "KmsKey" && { required: ["spec"] }),
  };
}

/** The CustomResourceDefinition manifest of a kind. */
export function crdManifest(kind: KindName): Record<string, unknown> {
  const info = KINDS[kind];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${info.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind,
        listKind: `${kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [...info.shortNames],
        categories: ["keyhaven", "kms"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: definitions[kind].columns,
          schema: { openAPIV3Schema: objectSchema(kind) },
        },
      ],
    },
  };
}
