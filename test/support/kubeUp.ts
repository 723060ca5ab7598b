/**
 * A real Kubernetes control plane for tests: etcd and kube-apiserver v1.32 started by
 * `../shared/kubernetes/kube-up` (see its header for what runs: no kubelet, scheduler or
 * controller-manager). One control plane per test file (`startControlPlane()` in
 * `beforeAll`, `stop()` in `afterAll`); tests isolate themselves with a namespace each
 * (`createNamespace`). A behaviour of the API server is proven only here: the fakes
 * under test/kube/ are for fast unit tests.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, tempDir } from "./server.js";

const run = promisify(execFile);

/** Where shared/ lives: beside the checkout, as in CI (`KEYHAVEN_SHARED` overrides). */
export const SHARED_DIR = resolve(process.env.KEYHAVEN_SHARED ?? join(REPO_ROOT, "..", "shared"));
const KUBE_UP = join(SHARED_DIR, "kubernetes", "kube-up");
const KUBE_DOWN = join(SHARED_DIR, "kubernetes", "kube-down");

export interface ControlPlane {
  /** The folder kube-up wrote (kubeconfig, pki/, log/). */
  readonly dir: string;
  /** Admin kubeconfig (a static token in system:masters). */
  readonly kubeconfig: string;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** The API server's CA certificate (PEM file). */
  readonly caFile: string;
  /** The ServiceAccount token issuer (`iss` of TokenRequest tokens). */
  readonly issuer: string;
  readonly adminToken: string;
  /** GET/POST/PUT/PATCH/DELETE against the API server as the admin; JSON in, JSON out. */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; body: unknown }>;
  /** The same as another identity: a bearer token (e.g. from the TokenRequest API). */
  requestAs(
    token: string,
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; body: unknown }>;
  /** A kubeconfig file for this API server authenticating with `token`. */
  kubeconfigFor(token: string): string;
  stop(): Promise<void>;
}

/** Starts etcd + kube-apiserver (about 6-10 s on 2 cores). */
export async function startControlPlane(
  options: {
    apiserverArgs?: string;
    /** Start again on the folder of a stopped control plane: same etcd data, CA and token. */
    dir?: string;
  } = {},
): Promise<ControlPlane> {
  if (!existsSync(KUBE_UP)) {
    throw new Error(
      `the real-cluster tests need ${KUBE_UP} (shared/ beside the checkout, or KEYHAVEN_SHARED)`,
    );
  }
  const dir = options.dir ?? tempDir("keyhaven-kube-");
  try {
    await run(KUBE_UP, [dir], {
      env: { ...process.env, KUBE_APISERVER_ARGS: options.apiserverArgs ?? "" },
      timeout: 120_000,
    });
  } catch (err) {
    const e = err as { stderr?: string | Buffer; message: string };
    throw new Error(`kube-up ${dir} failed: ${e.stderr?.toString() ?? e.message}`, { cause: err });
  }
  const env = Object.fromEntries(
    readFileSync(join(dir, "env"), "utf8")
      .split("\n")
      .map((line) => /^export (\w+)=(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const url = env.KUBE_APISERVER_URL!;
  const caFile = env.KUBE_CA_FILE!;
  const adminToken = env.KUBE_ADMIN_TOKEN!;
  const ca = readFileSync(caFile);
  const { Agent, request: httpsRequest } = await import("node:https");
  const agent = new Agent({ ca, keepAlive: true });
  const requestAs: ControlPlane["requestAs"] = (
    token,
    method,
    path,
    body,
    contentType = "application/json",
  ) =>
    new Promise((resolveRequest, reject) => {
      const req = httpsRequest(
        new URL(path, url),
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(body !== undefined && { "content-type": contentType }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not JSON (e.g. /readyz): keep the text */
            }
            resolveRequest({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on("error", reject);
      if (body !== undefined) req.end(typeof body === "string" ? body : JSON.stringify(body));
      else req.end();
    });
  let kubeconfigs = 0;
  return {
    dir,
    kubeconfig: env.KUBECONFIG!,
    url,
    caFile,
    issuer: env.KUBE_SA_ISSUER!,
    adminToken,
    request: (method, path, body, contentType) =>
      requestAs(adminToken, method, path, body, contentType),
    requestAs,
    kubeconfigFor(token) {
      const file = join(dir, `kubeconfig-${++kubeconfigs}`);
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [
            { name: "kube-up", cluster: { server: url, "certificate-authority": caFile } },
          ],
          users: [{ name: "token", user: { token } }],
          contexts: [{ name: "kube-up", context: { cluster: "kube-up", user: "token" } }],
          "current-context": "kube-up",
        }),
        { mode: 0o600 },
      );
      return file;
    },
    async stop() {
      agent.destroy();
      await run(KUBE_DOWN, [dir], { timeout: 60_000 }).catch(() => undefined);
    },
  };
}

/** Creates a namespace (with optional labels) and returns its name. */
export async function createNamespace(
  plane: ControlPlane,
  name: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const res = await plane.request("POST", "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels },
  });
  if (res.status !== 201) throw new Error(`create namespace ${name}: ${JSON.stringify(res.body)}`);
  return name;
}

/** A token for a ServiceAccount from the TokenRequest API (default audience: the API server). */
export async function serviceAccountToken(
  plane: ControlPlane,
  namespace: string,
  name: string,
  audiences?: readonly string[],
): Promise<string> {
  const res = await plane.request(
    "POST",
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600, ...(audiences && { audiences }) },
    },
  );
  const token = (res.body as { status?: { token?: string } }).status?.token;
  if (res.status !== 201 || !token)
    throw new Error(
      `TokenRequest for ${namespace}/${name}: ${res.status} ${JSON.stringify(res.body)}`,
    );
  return token;
}

/** The `keyhaven serve` flags for the kubernetes store in `namespace` of this control plane. */
export const kubernetesStoreFlags = (plane: ControlPlane, namespace: string): string[] => [
  "--store",
  "kubernetes",
  "--store-namespace",
  namespace,
  "--kubeconfig",
  plane.kubeconfig,
];
