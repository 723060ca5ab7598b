/**
 * The pod mutation, as a pure function pod → pod. The admission server diffs the result
 * against the input to build the JSON patch, so this function only has to say what an
 * injected pod looks like.
 *
 * Idempotent by construction: every step is "ensure X is present" (a volume, an env
 * var, a mount, the agent container, the command wrapper), so running it on its own
 * output changes nothing — which is what `reinvocationPolicy: IfNeeded` needs — and a
 * container added by a later webhook still gets the environment on reinvocation.
 *
 * What an opted-in pod gets (DESIGN.md, pod annotations contract):
 * - volume `keyhaven-token`: a projected ServiceAccount token, audience `keyhaven`,
 *   short expiry, mounted read-only in every container at TOKEN_DIR;
 * - env AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_KMS,
 *   AWS_ENDPOINT_URL_STS, AWS_REGION in every container (never overriding a value the
 *   pod already sets);
 * - when it asks for a data key or has `keyhaven:<base64>` env values: a memory-backed
 *   volume `keyhaven-secrets` at /var/run/keyhaven (read-only for the app), filled by the
 *   init container `keyhaven-agent`; optionally (annotation `refresh: "true"`) the agent
 *   runs as a native sidecar (`restartPolicy: Always`) that keeps the files fresh;
 * - containers with `keyhaven:` env values and a `command` in the pod spec are wrapped so
 *   the process starts with the decrypted values in its environment; the webhook never
 *   looks up an image's entrypoint in a registry.
 */

import type { AgentPlan, EncryptedEnv } from "../agent/plan.js";
import type { InjectionSettings } from "../config/config.js";

export const ANNOTATION_PREFIX = "keyhaven.dev/";
export const ANNOTATIONS = {
  inject: `${ANNOTATION_PREFIX}inject`,
  dataKey: `${ANNOTATION_PREFIX}data-key`,
  dataKeySecret: `${ANNOTATION_PREFIX}data-key-secret`,
  refresh: `${ANNOTATION_PREFIX}refresh`,
  envWrapper: `${ANNOTATION_PREFIX}env-wrapper`,
  roleArn: `${ANNOTATION_PREFIX}role-arn`,
  status: `${ANNOTATION_PREFIX}status`,
} as const;
export const NAMESPACE_LABEL = "keyhaven.dev/injection";
export const ENCRYPTED_ENV_PREFIX = "keyhaven:";

export const TOKEN_VOLUME = "keyhaven-token";
export const TOKEN_DIR = "/var/run/secrets/keyhaven.dev/serviceaccount";
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const SECRETS_VOLUME = "keyhaven-secrets";
export const SECRETS_DIR = "/var/run/keyhaven";
export const AGENT_CONTAINER = "keyhaven-agent";
export const TOKEN_AUDIENCE = "keyhaven";
/** `sh -c SCRIPT keyhaven-env ENVFILE cmd args…`: load the decrypted values, then exec. */
export const WRAPPER_SCRIPT = 'set -a && . "$1" && set +a && shift && exec "$@"';
export const WRAPPER_NAME = "keyhaven-env";

/** Settings the operator gives the webhook (flags of `keyhaven controller`). */
export type { InjectionSettings };

// Pods are open JSON: we type what we touch and keep every other field untouched.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export type Mutation =
  | { readonly kind: "skip"; readonly reason: string }
  | { readonly kind: "refuse"; readonly message: string }
  | { readonly kind: "inject"; readonly pod: JsonObject; readonly warnings: readonly string[] };

interface EnvVar extends JsonObject {
  name: string;
}
interface Container extends JsonObject {
  name: string;
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function objectAt(parent: JsonObject, key: string): JsonObject {
  const v = parent[key];
  if (isObject(v)) return v;
  const fresh: JsonObject = {};
  parent[key] = fresh;
  return fresh;
}

function arrayAt(parent: JsonObject, key: string): Json[] {
  const v = parent[key];
  if (Array.isArray(v)) return v;
  const fresh: Json[] = [];
  parent[key] = fresh;
  return fresh;
}

function named(list: Json[], name: string): JsonObject | undefined {
  return list.find((x): x is JsonObject => isObject(x) && x["name"] === name);
}

function str(v: Json | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The KeyId forms KMS accepts: key id, key ARN, alias name, alias ARN. */
const KEY_REF =
  /^(?:(?:mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:[a-z-]+:kms:[a-z0-9-]+:\d{12}:(?:key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)|alias\/[A-Za-z0-9/_-]{1,250})$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isOptedIn(pod: JsonObject): boolean {
  const annotations = (pod["metadata"] as JsonObject | undefined)?.["annotations"];
  return isObject(annotations) && annotations[ANNOTATIONS.inject] === "true";
}

/**
 * The name of the Secret that keeps the workload's encrypted data key: one per
 * workload (the pod's controller, with the ReplicaSet hash removed so a Deployment
 * keeps its key across rollouts) and key reference.
 */
export function dataKeySecretName(pod: JsonObject, keyId: string): string {
  const metadata = isObject(pod["metadata"]) ? pod["metadata"] : {};
  const owners = Array.isArray(metadata["ownerReferences"]) ? metadata["ownerReferences"] : [];
  const owner = owners.find((o) => isObject(o) && o["controller"] === true) ?? owners[0];
  const labels = isObject(metadata["labels"]) ? metadata["labels"] : {};
  let workload =
    (isObject(owner) && str(owner["name"])) ||
    str(metadata["generateName"])?.replace(/-$/, "") ||
    str(metadata["name"]) ||
    "pod";
  const hash = str(labels["pod-template-hash"]);
  if (isObject(owner) && owner["kind"] === "ReplicaSet" && hash && workload.endsWith(`-${hash}`))
    workload = workload.slice(0, -hash.length - 1);
  const digest = fnv1a(keyId);
  return `keyhaven-dk-${workload}`.slice(0, 253 - 9).replace(/[^a-z0-9.-]/g, "-") + `-${digest}`;
}

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function podUser(spec: JsonObject, container: JsonObject | undefined): number | undefined {
  const fromContainer = isObject(container?.["securityContext"])
    ? container["securityContext"]["runAsUser"]
    : undefined;
  if (typeof fromContainer === "number") return fromContainer;
  const fromPod = isObject(spec["securityContext"])
    ? spec["securityContext"]["runAsUser"]
    : undefined;
  return typeof fromPod === "number" ? fromPod : undefined;
}

/**
 * Mutates a deep copy of `pod` (never the argument). `namespace` is where the pod is
 * being created (from the AdmissionReview, since generated pods have no name yet).
 */
export function mutatePod(
  input: JsonObject,
  namespace: string,
  settings: InjectionSettings,
): Mutation {
  if (!isOptedIn(input))
    return { kind: "skip", reason: 'the pod does not carry keyhaven.dev/inject: "true"' };
  const inputAnnotations = (input["metadata"] as JsonObject | undefined)?.["annotations"];
  // Static (mirror) pods are read-only copies of kubelet's files; a patch could not apply.
  if (isObject(inputAnnotations) && inputAnnotations["kubernetes.io/config.mirror"] !== undefined)
    return { kind: "skip", reason: "mirror pods are never mutated" };
  const pod = structuredClone(input);
  const metadata = objectAt(pod, "metadata");
  const annotations = objectAt(metadata, "annotations");
  const spec = pod["spec"];
  if (!isObject(spec) || !Array.isArray(spec["containers"]) || spec["containers"].length === 0)
    return { kind: "refuse", message: "keyhaven: the pod has no containers to inject into" };
  const warnings: string[] = [];

  // --- read what the pod asks for, refusing what cannot be honoured ---------------------
  const dataKeyRef = annotations[ANNOTATIONS.dataKey];
  if (dataKeyRef !== undefined && (typeof dataKeyRef !== "string" || !KEY_REF.test(dataKeyRef)))
    return {
      kind: "refuse",
      message: `keyhaven: annotation ${ANNOTATIONS.dataKey} must be a key id, key ARN, alias name (alias/...) or alias ARN, without spaces`,
    };
  const refresh = annotations[ANNOTATIONS.refresh] === "true";
  const wrapperEnabled = annotations[ANNOTATIONS.envWrapper] !== "false";
  const explicitSecret = str(annotations[ANNOTATIONS.dataKeySecret]);
  if (
    explicitSecret !== undefined &&
    !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(explicitSecret)
  )
    return {
      kind: "refuse",
      message: `keyhaven: annotation ${ANNOTATIONS.dataKeySecret} must be a valid Secret name (lowercase letters, digits, '-' and '.')`,
    };

  const containers = spec["containers"].filter(isObject) as Container[];
  const initContainers = (
    Array.isArray(spec["initContainers"]) ? spec["initContainers"] : []
  ).filter(isObject) as Container[];
  const encrypted: EncryptedEnv[] = [];
  for (const c of containers) {
    if (typeof c.name !== "string" || !DNS_LABEL.test(c.name))
      return { kind: "refuse", message: "keyhaven: every container needs a valid name" };
    for (const e of Array.isArray(c["env"]) ? c["env"] : []) {
      if (!isObject(e)) continue;
      const value = str(e["value"]);
      if (value === undefined || !value.startsWith(ENCRYPTED_ENV_PREFIX)) continue;
      const name = str(e["name"]) ?? "";
      const ciphertext = value.slice(ENCRYPTED_ENV_PREFIX.length);
      if (!BASE64.test(ciphertext) || ciphertext.length % 4 !== 0)
        return {
          kind: "refuse",
          message: `keyhaven: env ${name} of container ${c.name} starts with "keyhaven:" but the rest is not base64 ciphertext; use the CiphertextBlob of \`aws kms encrypt\` as is`,
        };
      if (!SHELL_NAME.test(name))
        return {
          kind: "refuse",
          message: `keyhaven: env ${name} of container ${c.name} holds an encrypted value but its name is not a shell identifier ([A-Za-z_][A-Za-z0-9_]*); rename it`,
        };
      encrypted.push({ container: c.name, name, ciphertext });
    }
  }
  for (const c of initContainers) {
    if (c.name === AGENT_CONTAINER) continue;
    for (const e of Array.isArray(c["env"]) ? c["env"] : [])
      if (isObject(e) && str(e["value"])?.startsWith(ENCRYPTED_ENV_PREFIX))
        return {
          kind: "refuse",
          message: `keyhaven: init container ${c.name} has an encrypted env value; only app containers (spec.containers) get decrypted values`,
        };
  }

  // --- volumes --------------------------------------------------------------------------
  const volumes = arrayAt(spec, "volumes");
  const existingToken = named(volumes, TOKEN_VOLUME);
  if (existingToken && !isProjectedToken(existingToken))
    return {
      kind: "refuse",
      message: `keyhaven: the pod already has a volume named ${TOKEN_VOLUME} that keyhaven did not create; rename it`,
    };
  if (!existingToken)
    volumes.push({
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: settings.tokenExpirationSeconds,
              path: "token",
            },
          },
        ],
      },
    });
  const needsAgent = dataKeyRef !== undefined || encrypted.length > 0;
  if (needsAgent) {
    const existing = named(volumes, SECRETS_VOLUME);
    if (
      existing &&
      !(isObject(existing["emptyDir"]) && existing["emptyDir"]["medium"] === "Memory")
    )
      return {
        kind: "refuse",
        message: `keyhaven: the pod already has a volume named ${SECRETS_VOLUME} that is not a memory-backed emptyDir; rename it`,
      };
    if (!existing)
      volumes.push({ name: SECRETS_VOLUME, emptyDir: { medium: "Memory", sizeLimit: "1Mi" } });
  }

  // --- environment and mounts in every container ------------------------------------------
  const serviceAccount =
    str(spec["serviceAccountName"]) ?? str(spec["serviceAccount"]) ?? "default";
  const roleArn =
    str(annotations[ANNOTATIONS.roleArn]) ??
    settings.roleArn
      .replaceAll("{namespace}", namespace)
      .replaceAll("{serviceAccount}", serviceAccount);
  const awsEnv: EnvVar[] = [
    { name: "AWS_ROLE_ARN", value: roleArn },
    { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: TOKEN_FILE },
    { name: "AWS_ENDPOINT_URL_KMS", value: settings.kmsEndpoint },
    { name: "AWS_ENDPOINT_URL_STS", value: settings.stsEndpoint },
    { name: "AWS_REGION", value: settings.region },
  ];
  const tokenMount = { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true };
  for (const c of [...initContainers.filter((c) => c.name !== AGENT_CONTAINER), ...containers]) {
    const env = arrayAt(c, "env");
    for (const v of awsEnv) if (!named(env, v.name)) env.push({ ...v });
    const mounts = arrayAt(c, "volumeMounts");
    if (!mounts.some((m) => isObject(m) && m["mountPath"] === TOKEN_DIR)) {
      if (named(mounts, TOKEN_VOLUME) === undefined) mounts.push({ ...tokenMount });
    }
    if (needsAgent && !mounts.some((m) => isObject(m) && m["name"] === SECRETS_VOLUME)) {
      if (mounts.some((m) => isObject(m) && m["mountPath"] === SECRETS_DIR))
        return {
          kind: "refuse",
          message: `keyhaven: container ${c.name} already mounts something at ${SECRETS_DIR}`,
        };
      mounts.push({ name: SECRETS_VOLUME, mountPath: SECRETS_DIR, readOnly: true });
    }
  }

  // --- the agent ------------------------------------------------------------------------
  if (needsAgent) {
    const plan: AgentPlan = {
      ...(dataKeyRef !== undefined && {
        dataKey: {
          keyId: dataKeyRef,
          secretName: explicitSecret ?? dataKeySecretName(pod, dataKeyRef),
        },
      }),
      env: encrypted,
      workload: { namespace, serviceAccount },
    };
    const uid = podUser(spec, containers[0]);
    if (uid === undefined)
      warnings.push(
        `keyhaven: no runAsUser in the pod spec; the agent writes files with mode 0400 as its own user, so set runAsUser for containers that read ${SECRETS_DIR}`,
      );
    const agent: Container = {
      name: AGENT_CONTAINER,
      image: settings.agentImage,
      ...(settings.agentImagePullPolicy !== undefined && {
        imagePullPolicy: settings.agentImagePullPolicy,
      }),
      args: refresh
        ? ["agent", "--refresh-interval", String(settings.refreshIntervalSeconds)]
        : ["agent"],
      env: [
        ...awsEnv.map((v) => ({ ...v })),
        { name: "KEYHAVEN_AGENT_PLAN", value: JSON.stringify(plan) },
        { name: "KEYHAVEN_AGENT_DIR", value: SECRETS_DIR },
        { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      ],
      volumeMounts: [{ ...tokenMount }, { name: SECRETS_VOLUME, mountPath: SECRETS_DIR }],
      resources: {
        requests: { cpu: "10m", memory: "32Mi" },
        limits: { memory: "128Mi" },
      },
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: uid === undefined ? true : uid !== 0,
        ...(uid !== undefined && { runAsUser: uid }),
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      },
      ...(refresh && {
        restartPolicy: "Always",
        // Ready once the first pass has written the files, so app containers start after it.
        startupProbe: {
          exec: { command: ["test", "-f", `${SECRETS_DIR}/.ready`] },
          periodSeconds: 1,
          failureThreshold: 120,
        },
      }),
    };
    const inits = arrayAt(spec, "initContainers");
    const at = inits.findIndex((c) => isObject(c) && c["name"] === AGENT_CONTAINER);
    if (at >= 0) {
      inits[at] = agent;
    } else {
      // After leading native sidecars (a service-mesh proxy, for one) so the agent can reach
      // the key service through them; before every other init container.
      let insertAt = 0;
      while (
        insertAt < inits.length &&
        isObject(inits[insertAt]) &&
        (inits[insertAt] as JsonObject)["restartPolicy"] === "Always"
      )
        insertAt++;
      inits.splice(insertAt, 0, agent);
    }
  }

  // --- command wrapper for decrypted env --------------------------------------------------
  for (const c of containers) {
    const mine = encrypted.filter((e) => e.container === c.name);
    if (mine.length === 0 || !wrapperEnabled) continue;
    const command = c["command"];
    if (!Array.isArray(command) || command.length === 0) {
      warnings.push(
        `keyhaven: container ${c.name} has no command in the pod spec, so its encrypted env values are only written to ${SECRETS_DIR}/env/${c.name}/ (keyhaven never asks an image registry for the entrypoint)`,
      );
      continue;
    }
    if (isWrapped(command)) continue;
    const args = Array.isArray(c["args"]) ? c["args"] : [];
    c["command"] = [
      "/bin/sh",
      "-c",
      WRAPPER_SCRIPT,
      WRAPPER_NAME,
      `${SECRETS_DIR}/env/${c.name}.env`,
      ...command,
      ...args,
    ];
    delete c["args"];
  }

  annotations[ANNOTATIONS.status] = "injected";
  return { kind: "inject", pod, warnings };
}

function isWrapped(command: Json[]): boolean {
  return (
    command[0] === "/bin/sh" &&
    command[1] === "-c" &&
    command[2] === WRAPPER_SCRIPT &&
    command[3] === WRAPPER_NAME
  );
}

function isProjectedToken(volume: JsonObject): boolean {
  const projected = volume["projected"];
  if (!isObject(projected) || !Array.isArray(projected["sources"])) return false;
  return projected["sources"].some(
    (s) =>
      isObject(s) &&
      isObject(s["serviceAccountToken"]) &&
      s["serviceAccountToken"]["audience"] === TOKEN_AUDIENCE,
  );
}
