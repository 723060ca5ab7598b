/**
 * The operator on the real API server (test/support/kubeUp.ts): the CRDs from crds/
 * applied and Established, a controller identity with exactly the chart's operator
 * RBAC (a ServiceAccount token from the TokenRequest API in a kubeconfig of its own),
 * `keyhaven controller` run as the built program, and small readers of objects and
 * Events. The API server's audit log (`auditArgs`) says who made which request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parse } from "yaml";
import { isReady } from "../../src/api/v1alpha1/conditions.js";
import {
  API_VERSION,
  KINDS,
  type KindName,
  type KubeObject,
} from "../../src/api/v1alpha1/types.js";
import type { ControlPlane } from "../support/kubeUp.js";
import {
  BUILT_PROGRAM,
  REPO_ROOT,
  tempDir,
  type Program,
  type ServerHandle,
} from "../support/server.js";
import { eventually } from "./drive.js";

const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/** Creates the three CRDs of crds/ and waits until the API server reports them Established. */
export async function applyCrds(plane: ControlPlane, dir = join(REPO_ROOT, "crds")): Promise<void> {
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(dir, file), "utf8")) as { metadata: { name: string } };
    const res = await plane.request("POST", CRD_PATH, crd);
    if (res.status !== 201) throw new Error(`create CRD ${file}: ${JSON.stringify(res.body)}`);
    names.push(crd.metadata.name);
  }
  for (const name of names)
    await eventually(
      async () => {
        const res = await plane.request("GET", `${CRD_PATH}/${name}`);
        const conditions =
          (res.body as { status?: { conditions?: { type: string; status: string }[] } }).status
            ?.conditions ?? [];
        return conditions.some((c) => c.type === "Established" && c.status === "True");
      },
      `CRD ${name} Established`,
      30_000,
      100,
    );
}

/** An audit policy recording who made each request (metadata only), and the flags that enable it. */
export function auditArgs(): { args: string; log: string } {
  const dir = tempDir("keyhaven-audit-");
  const policy = join(dir, "policy.yaml");
  writeFileSync(
    policy,
    [
      "apiVersion: audit.k8s.io/v1",
      "kind: Policy",
      "omitStages: [RequestReceived]",
      "rules:",
      "  - level: Metadata",
      "    resources:",
      '      - group: "keyhaven.dev"',
      '      - group: "coordination.k8s.io"',
      '      - group: ""',
      "        resources: [events]",
      "  - level: None",
      "",
    ].join("\n"),
  );
  const log = join(dir, "audit.log");
  return { args: `--audit-policy-file=${policy} --audit-log-path=${log}`, log };
}

export interface AuditEvent {
  readonly verb: string;
  readonly user: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly code: number;
  /** When the API server received the request (ms since the epoch). */
  readonly at: number;
}

/** The API server's audit log so far, one entry per request. */
export function readAudit(log: string): AuditEvent[] {
  let text: string;
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const e = JSON.parse(line) as {
        verb: string;
        user: { username: string };
        objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
        responseStatus?: { code?: number };
        requestReceivedTimestamp: string;
      };
      const r = e.objectRef ?? {};
      return {
        verb: e.verb,
        user: e.user.username,
        resource: `${r.resource ?? ""}${r.subresource ? `/${r.subresource}` : ""}`,
        ...(r.namespace && { namespace: r.namespace }),
        ...(r.name && { name: r.name }),
        code: e.responseStatus?.code ?? 0,
        at: Date.parse(e.requestReceivedTimestamp),
      };
    });
}

const WRITE_VERBS = new Set(["create", "update", "patch", "delete"]);
export const isWrite = (e: AuditEvent) => WRITE_VERBS.has(e.verb);

/**
 * A ServiceAccount `name` in `namespace` with the chart's operator RBAC (cluster-wide:
 * the custom resources, their /status, Events; in `namespace`: the Lease), and a
 * kubeconfig carrying its TokenRequest token. Returns the kubeconfig's path and the
 * user name the API server knows it by.
 */
export async function controllerIdentity(
  plane: ControlPlane,
  namespace: string,
  name: string,
): Promise<{ kubeconfig: string; user: string }> {
  const must = async (method: string, path: string, body: unknown) => {
    const res = await plane.request(method, path, body);
    if (res.status >= 300 && res.status !== 409)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const rbac = "/apis/rbac.authorization.k8s.io/v1";
  await must("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
    metadata: { name },
  });
  await must("POST", `${rbac}/clusterroles`, {
    metadata: { name: "keyhaven-controller-test" },
    rules: [
      {
        apiGroups: ["keyhaven.dev"],
        resources: ["kmskeys", "kmsaliases", "kmsgrants", "kmssecrets"],
        verbs: ["get", "list", "watch", "patch"],
      },
      {
        apiGroups: ["keyhaven.dev"],
        resources: ["kmskeys/status", "kmsaliases/status", "kmsgrants/status", "kmssecrets/status"],
        verbs: ["patch"],
      },
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
    ],
  });
  const subject = { kind: "ServiceAccount", name, namespace };
  await must("POST", `${rbac}/clusterrolebindings`, {
    metadata: { name: `keyhaven-controller-test-${namespace}-${name}` },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "keyhaven-controller-test",
    },
    subjects: [subject],
  });
  await must("POST", `${rbac}/namespaces/${namespace}/roles`, {
    metadata: { name: "keyhaven-controller-lease" },
    rules: [
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        resourceNames: ["keyhaven-controller"],
        verbs: ["get", "update"],
      },
    ],
  });
  await must("POST", `${rbac}/namespaces/${namespace}/rolebindings`, {
    metadata: { name: `keyhaven-controller-lease-${name}` },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "keyhaven-controller-lease",
    },
    subjects: [subject],
  });
  const token = (await must(
    "POST",
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    },
  )) as { status: { token: string } };
  const kubeconfig = join(tempDir("keyhaven-kubeconfig-"), "kubeconfig");
  writeFileSync(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: kube-up, cluster: {server: "${plane.url}", certificate-authority: "${plane.caFile}"}}]`,
      `users: [{name: ${name}, user: {token: "${token.status.token}"}}]`,
      `contexts: [{name: ${name}, context: {cluster: kube-up, user: ${name}}}]`,
      `current-context: ${name}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return { kubeconfig, user: `system:serviceaccount:${namespace}:${name}` };
}

export interface ControllerProgram {
  readonly child: ChildProcess;
  /** http://HOST:PORT of /metrics, /healthz, /readyz. */
  readonly metricsUrl: string;
  /** stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<number | null>;
  /** SIGKILL, for the end of a test. */
  kill(): Promise<void>;
}

/** The environment `keyhaven controller` reads its KMS endpoint and credentials from. */
export function kmsEnvironment(
  service: Pick<ServerHandle, "url" | "region">,
  credential: { accessKeyId: string; secretAccessKey: string },
): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"],
    AWS_ENDPOINT_URL_KMS: service.url,
    AWS_REGION: service.region,
    AWS_ACCESS_KEY_ID: credential.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
  };
}

/**
 * Runs `node dist/src/main.js controller ARGS` and waits for its "controller started"
 * line (the metrics URL). A process that exits first rejects with its output.
 */
export async function startControllerProgram(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  program: Program = BUILT_PROGRAM,
): Promise<ControllerProgram> {
  const child = spawn(program.node, [program.main, "controller", ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    createInterface(child.stdout).on("line", (line) => {
      output += `${line}\n`;
      const m = /"metrics":"(http:[^"]+)\/metrics"/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) =>
      reject(new Error(`keyhaven controller exited (${code}):\n${output}`)),
    );
  });
  return {
    child,
    metricsUrl,
    output: () => output,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** GET one keyhaven object (undefined when it does not exist). */
export async function getObject<T extends KubeObject = KubeObject>(
  plane: ControlPlane,
  kind: KindName,
  namespace: string,
  name: string,
): Promise<T | undefined> {
  const res = await plane.request(
    "GET",
    `/apis/${API_VERSION}/namespaces/${namespace}/${KINDS[kind].plural}/${name}`,
  );
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET ${kind} ${namespace}/${name}: ${res.status}`);
  return res.body as T;
}

/** POST a keyhaven object (as the fixtures build them) into `namespace`; the API server's answer. */
export async function createObject(
  plane: ControlPlane,
  namespace: string,
  obj: Record<string, unknown>,
): Promise<{ status: number; body: unknown }> {
  const kind = obj["kind"] as KindName;
  return plane.request(
    "POST",
    `/apis/${API_VERSION}/namespaces/${namespace}/${KINDS[kind].plural}`,
    obj,
  );
}

/** JSON merge patch of a keyhaven object's spec/metadata. */
export async function mergeObject(
  plane: ControlPlane,
  kind: KindName,
  namespace: string,
  name: string,
  patch: unknown,
): Promise<{ status: number; body: unknown }> {
  return plane.request(
    "PATCH",
    `/apis/${API_VERSION}/namespaces/${namespace}/${KINDS[kind].plural}/${name}`,
    patch,
    "application/merge-patch+json",
  );
}

/** Waits (polling the API server) until the object is Ready at its current generation. */
export async function waitReady<T extends KubeObject = KubeObject>(
  plane: ControlPlane,
  kind: KindName,
  namespace: string,
  name: string,
  limitMs = 30_000,
): Promise<T> {
  let last: T | undefined;
  try {
    return await eventually(
      async () => {
        const o = (last = await getObject<T>(plane, kind, namespace, name));
        const status = o?.status as
          { observedGeneration?: number; conditions?: Parameters<typeof isReady>[0] } | undefined;
        return (
          o !== undefined &&
          status?.observedGeneration === o.metadata.generation &&
          isReady(status.conditions) &&
          o
        );
      },
      `${kind} ${namespace}/${name} Ready`,
      limitMs,
      100,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; last seen: generation ${last?.metadata.generation}, status ${JSON.stringify(last?.status)}`,
      { cause: err },
    );
  }
}

export interface CoreEvent {
  readonly type: string;
  readonly reason: string;
  readonly message: string;
  readonly involvedObject: { kind: string; name: string };
}

/** The core/v1 Events the API server holds about one object. */
export async function eventsOf(
  plane: ControlPlane,
  namespace: string,
  name: string,
): Promise<CoreEvent[]> {
  const res = await plane.request(
    "GET",
    `/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`,
  );
  return (res.body as { items: CoreEvent[] }).items;
}
