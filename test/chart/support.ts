/**
 * Chart testing with the real Helm (3 and 4, test/support/tools.ts): render
 * charts/keyhaven with `helm template`, parse the output strictly, and validate every
 * object against the Kubernetes schemas:
 * - types, required fields and enums with the `kubernetes-models` validators;
 * - unknown fields (a mis-indented key) with the field lists of the generated
 *   @kubernetes/client-node models, since the OpenAPI schemas allow extra keys;
 * - custom resources against the openAPIV3Schema of our CRDs, converted to JSON Schema
 *   with unknown fields rejected as the API server's strict field validation does.
 * The API server itself validates them in test/cluster-chart.test.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import { parse, parseAllDocuments, stringify } from "yaml";
import { helm3, helm4, runTool, toolEnv } from "../support/tools.js";
// Test-only: the generated model metadata (field names per type) is the most complete
// offline description of the Kubernetes API types; nothing here talks to a server.
// eslint-disable-next-line no-restricted-imports
import * as k8sModels from "@kubernetes/client-node";
import { Certificate, Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CHART = join(ROOT, "charts/keyhaven");

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export type HelmMajor = "helm3" | "helm4";
const HELM: Record<HelmMajor, () => string> = { helm3, helm4 };

export interface RenderOptions {
  /** Values merged over values.yaml (written to a temp file, passed with -f). */
  readonly values?: Record<string, unknown>;
  readonly name?: string;
  readonly namespace?: string;
  readonly kubeVersion?: string;
  readonly apiVersions?: readonly string[];
  /** Which Helm renders (default Helm 3, the one most clusters are managed with). */
  readonly helm?: HelmMajor;
  /** `--skip-schema-validation`: what the templates alone refuse. */
  readonly skipSchemaValidation?: boolean;
}

/** The values file for `options` (empty values: none). */
function valuesArgs(options: RenderOptions): string[] {
  if (!options.values) return [];
  const file = join(mkdtempSync(join(tmpdir(), "keyhaven-chart-")), "values.yaml");
  writeFileSync(file, stringify(options.values));
  return ["-f", file];
}

/** `helm template` arguments for `options`. */
export function templateArgs(options: RenderOptions = {}): string[] {
  const args = [
    "template",
    options.name ?? "keyhaven",
    CHART,
    "--namespace",
    options.namespace ?? "keyhaven",
    ...valuesArgs(options),
  ];
  if (options.kubeVersion) args.push("--kube-version", options.kubeVersion);
  for (const v of options.apiVersions ?? []) args.push("--api-versions", v);
  if (options.skipSchemaValidation) args.push("--skip-schema-validation");
  return args;
}

/** `helm lint --strict` arguments for `options`. */
export function lintArgs(options: RenderOptions = {}): string[] {
  return [
    "lint",
    "--strict",
    CHART,
    "--namespace",
    options.namespace ?? "keyhaven",
    ...valuesArgs(options),
  ];
}

export function helmPath(major: HelmMajor = "helm3"): string {
  return HELM[major]();
}

export class RenderError extends Error {
  override name = "RenderError";
}

function run(major: HelmMajor, args: string[]): string {
  try {
    return execFileSync(helmPath(major), args, {
      encoding: "utf8",
      env: toolEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const stderr = (err as { stderr?: string | Buffer }).stderr?.toString() ?? String(err);
    throw new RenderError(stderr.trim());
  }
}

/** `helm template`: the manifests as text. */
export function renderText(options: RenderOptions = {}): string {
  return run(options.helm ?? "helm3", templateArgs(options));
}

/** `helm template` with Helm 3 and Helm 4 at once; a failure is a RenderError. */
export async function renderBoth(options: RenderOptions = {}): Promise<Record<HelmMajor, string>> {
  const [h3, h4] = await Promise.all(
    (["helm3", "helm4"] as const).map(async (major) => {
      const result = await runTool(helmPath(major), templateArgs(options));
      if (result.code !== 0) throw new RenderError(`${major}: ${result.stderr.trim()}`);
      return result.stdout;
    }),
  );
  return { helm3: h3!, helm4: h4! };
}

/**
 * The rendered NOTES.txt, from Helm 4's client-only dry run (Helm 3's dry run insists on
 * reaching a cluster; test/cluster-chart.test.ts reads its NOTES from a real install).
 */
export function renderNotes(options: RenderOptions = {}): string {
  const out = run("helm4", [
    "install",
    options.name ?? "keyhaven",
    CHART,
    "--dry-run=client",
    "--namespace",
    options.namespace ?? "keyhaven",
    ...valuesArgs(options),
  ]);
  const at = out.indexOf("\nNOTES:\n");
  if (at < 0) throw new Error(`no NOTES in helm install --dry-run output:\n${out.slice(0, 400)}`);
  return out.slice(at + "\nNOTES:\n".length);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of user values over defaults: maps merge, `null` removes a key. */
function coalesce(defaults: unknown, user: unknown): unknown {
  if (!isMap(defaults) || !isMap(user)) return user === undefined ? defaults : user;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(user)) {
    if (v === null) delete out[k];
    else out[k] = coalesce(defaults[k], v);
  }
  return out;
}

/** The merged values the templates see (what values.schema.json is checked against). */
export function mergedValues(options: RenderOptions = {}): unknown {
  return coalesce(parse(readFileSync(join(CHART, "values.yaml"), "utf8")), options.values ?? {});
}

/** Values the chart generates at install (random credentials and root key, and their checksum). */
const GENERATED =
  /^(\s+(?:checksum\/credentials|credentials\.yaml|controller-access-key-id|controller-secret-access-key|admin-access-key-id|admin-secret-access-key|root\.key): ).+$/gm;

/** `helm template` output with the values generated at install replaced, for snapshots. */
export function withoutGenerated(text: string): string {
  return text.replace(GENERATED, "$1<generated at install>");
}

/** Parses YAML documents strictly (duplicate keys, syntax errors and non-objects fail). */
export function parseManifests(text: string, source = "rendered output"): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length)
      throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== "object" || Array.isArray(value))
      throw new Error(
        `${source}: a document is not an object: ${JSON.stringify(value).slice(0, 80)}`,
      );
    objects.push(value as K8sObject);
  }
  return objects;
}

export function render(options: RenderOptions = {}): K8sObject[] {
  return parseManifests(renderText(options));
}

type ModelClass = new (data: never) => { validate(): void };
const MODELS: Record<string, ModelClass> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": MutatingWebhookConfiguration,
  "apiextensions.k8s.io/v1/CustomResourceDefinition": CustomResourceDefinition,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "cert-manager.io/v1/Certificate": Certificate,
  "cert-manager.io/v1/Issuer": Issuer,
};

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}
type ModelWithFields = { getAttributeTypeMap(): Attribute[] };

function modelFields(typeName: string): Attribute[] | undefined {
  const candidate = (k8sModels as unknown as Record<string, unknown>)[typeName];
  if (typeof candidate !== "function") return undefined;
  const withFields = candidate as unknown as Partial<ModelWithFields>;
  return typeof withFields.getAttributeTypeMap === "function"
    ? withFields.getAttributeTypeMap()
    : undefined;
}

/** Fields that are not in the Kubernetes type at their place, as JSON paths. */
export function unknownFields(value: unknown, typeName: string, path = ""): string[] {
  const array = /^Array<(.+)>$/.exec(typeName);
  if (array) {
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`))
      : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(typeName);
  if (map) {
    return value && typeof value === "object"
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`))
      : [];
  }
  const fields = modelFields(typeName);
  if (!fields || !value || typeof value !== "object" || Array.isArray(value)) return [];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = fields.find((f) => f.baseName === key);
    if (!field) problems.push(`${path}.${key}`);
    else problems.push(...unknownFields(v, field.type, `${path}.${key}`));
  }
  return problems;
}

/** Client-node model name of a built-in kind: apps/v1 Deployment → V1Deployment. */
function builtinTypeName(obj: K8sObject): string | undefined {
  const version = obj.apiVersion.split("/").pop()!;
  const name = `${version[0]!.toUpperCase()}${version.slice(1)}${obj.kind}`;
  return modelFields(name) ? name : undefined;
}

/** Every problem with one object, as readable strings; empty when valid. */
export function validateObject(
  obj: K8sObject,
  crdSchemas = new Map<string, ValidateFunction>(),
): string[] {
  const id = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const key = `${obj.apiVersion}/${obj.kind}`;
  const crd = crdSchemas.get(key);
  if (crd) {
    return crd(obj)
      ? []
      : (crd.errors ?? []).map((e) => `${id}: ${e.instancePath || "/"} ${e.message ?? ""}`);
  }
  const Model = MODELS[key];
  if (!Model) return [`${id}: no schema known for ${key}`];
  const problems: string[] = [];
  try {
    new Model(obj as never).validate();
  } catch (err) {
    problems.push(`${id}: ${(err as Error).message}`);
  }
  if (!obj.metadata?.name) problems.push(`${id}: metadata.name is missing`);
  const typeName = builtinTypeName(obj);
  if (typeName)
    problems.push(...unknownFields(obj, typeName).map((p) => `${id}: unknown field ${p}`));
  return problems;
}

/**
 * A CRD's openAPIV3Schema as JSON Schema: nullable, int-or-string and
 * preserve-unknown-fields as the API server reads them, and unknown fields rejected
 * (kubectl's default strict field validation). CEL rules are not evaluated here.
 */
export function crdSchemaToJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(crdSchemaToJsonSchema);
  if (!schema || typeof schema !== "object") return schema;
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith("x-kubernetes-") || k === "nullable" || k === "format") continue;
    if (k === "properties" || k === "patternProperties" || k === "definitions") {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([name, sub]) => [
          name,
          crdSchemaToJsonSchema(sub),
        ]),
      );
    } else if (["items", "additionalProperties", "not"].includes(k) && typeof v === "object") {
      out[k] = crdSchemaToJsonSchema(v);
    } else if (["allOf", "anyOf", "oneOf"].includes(k)) {
      out[k] = crdSchemaToJsonSchema(v);
    } else {
      out[k] = v;
    }
  }
  if (s["x-kubernetes-int-or-string"] === true) {
    delete out["type"];
    out["anyOf"] = [{ type: "integer" }, { type: "string" }];
  }
  if (s["nullable"] === true && typeof out["type"] === "string")
    out["type"] = [out["type"], "null"];
  if (
    out["type"] === "object" &&
    out["properties"] !== undefined &&
    out["additionalProperties"] === undefined &&
    s["x-kubernetes-preserve-unknown-fields"] !== true
  )
    out["additionalProperties"] = false;
  return out;
}

/** Validators for the custom resources of every CRD in `dir`, keyed "group/version/Kind". */
export function crdValidators(dir: string): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validators = new Map<string, ValidateFunction>();
  for (const file of yamlFiles(dir)) {
    for (const crd of parseManifests(readFileSync(join(dir, file), "utf8"), file)) {
      if (crd.kind !== "CustomResourceDefinition") continue;
      const spec = crd["spec"] as {
        group: string;
        names: { kind: string };
        versions: { name: string; schema?: { openAPIV3Schema: unknown } }[];
      };
      for (const version of spec.versions) {
        if (!version.schema) continue;
        const root = crdSchemaToJsonSchema(version.schema.openAPIV3Schema) as Record<
          string,
          unknown
        >;
        // apiVersion, kind and metadata are checked by the API server itself.
        const properties = {
          apiVersion: {},
          kind: {},
          metadata: { type: "object" },
          ...(root["properties"] as object),
        };
        validators.set(
          `${spec.group}/${version.name}/${spec.names.kind}`,
          ajv.compile({ ...root, properties }),
        );
      }
    }
  }
  return validators;
}

export function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
}

/** The pod spec of a workload object, or undefined. */
export function podSpec(obj: K8sObject): Record<string, unknown> | undefined {
  const spec = obj["spec"] as { template?: { spec?: Record<string, unknown> } } | undefined;
  return spec?.template?.spec;
}
