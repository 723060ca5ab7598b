/**
 * Helpers for the real-cluster webhook, web-identity and agent tests (kubeUp.ts):
 * ServiceAccounts and TokenRequest tokens, a MutatingWebhookConfiguration registered by
 * URL that mirrors the chart's (charts/keyhaven/templates/webhook.yaml), Pod creates,
 * kubeconfigs that authenticate with a ServiceAccount's token, the key service verifying
 * the API server's tokens, and the webhook started in-process against the API server.
 */
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import pino from "pino";
import { loadKubeConfig } from "../../src/kube/kubeConfig.js";
import { webhookResources } from "../../src/kube/webhookResources.js";
import type { InjectionSettings, JsonObject } from "../../src/webhook/podMutation.js";
import { startWebhook, type RunningWebhook } from "../../src/webhook/startWebhook.js";
import { eventually } from "../kube/drive.js";
import { startWithPrincipals, type AccessControlSpec } from "./accessControl.js";
import { createNamespace, type ControlPlane } from "./kubeUp.js";
import { tempDir } from "./server.js";

/**
 * Hook and test limit for the real-cluster files: they start a control plane each and run
 * in parallel with the rest of the suite on 2 shared cores.
 */
export const CLUSTER_TIMEOUT_MS = 180_000;

/** A loopback port free right now (the webhook URL must be registered before it listens). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Throws with the API server's answer unless the status is one of `ok`. */
export async function must(
  plane: ControlPlane,
  method: string,
  path: string,
  body?: unknown,
  ok: readonly number[] = [200, 201],
  contentType?: string,
): Promise<JsonObject> {
  const res = await plane.request(method, path, body, contentType);
  if (!ok.includes(res.status))
    throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as JsonObject;
}

export async function createServiceAccount(
  plane: ControlPlane,
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await must(plane, "POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, labels },
  });
}

/**
 * A token from the TokenRequest API (what the kubelet puts in a projected volume):
 * `audiences` empty means the API server's own audience; `pod` binds it to a Pod.
 */
export async function requestToken(
  plane: ControlPlane,
  namespace: string,
  serviceAccount: string,
  options: {
    audiences?: readonly string[];
    expirationSeconds?: number;
    pod?: { name: string; uid: string };
  } = {},
): Promise<string> {
  const body = await must(
    plane,
    "POST",
    `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: options.audiences ?? [],
        expirationSeconds: options.expirationSeconds ?? 3600,
        ...(options.pod && {
          boundObjectRef: { apiVersion: "v1", kind: "Pod", ...options.pod },
        }),
      },
    },
  );
  return (body["status"] as { token: string }).token;
}

/** A kubeconfig for the control plane that authenticates with `token` (e.g. a ServiceAccount's). */
export function kubeconfigWithToken(plane: ControlPlane, token: string): string {
  const file = join(tempDir("keyhaven-kubeconfig-"), "config");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "kube-up", cluster: { server: plane.url, "certificate-authority": plane.caFile } },
      ],
      users: [{ name: "sa", user: { token } }],
      contexts: [{ name: "kube-up", context: { cluster: "kube-up", user: "sa" } }],
      "current-context": "kube-up",
    }),
    { mode: 0o600 },
  );
  return file;
}

/**
 * The chart's MutatingWebhookConfiguration, registered by URL instead of through the
 * Service (kube-up has no kube-proxy), with the caBundle left for the leader to set.
 */
export async function registerWebhook(
  plane: ControlPlane,
  options: {
    name: string;
    url: string;
    releaseNamespace: string;
    failurePolicy?: "Fail" | "Ignore";
    caBundle?: string;
  },
): Promise<void> {
  await must(plane, "POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: options.name },
    webhooks: [
      {
        name: "pods.keyhaven.dev",
        admissionReviewVersions: ["v1"],
        clientConfig: {
          url: options.url,
          ...(options.caBundle !== undefined && {
            caBundle: Buffer.from(options.caBundle).toString("base64"),
          }),
        },
        rules: [
          {
            operations: ["CREATE"],
            apiGroups: [""],
            apiVersions: ["v1"],
            resources: ["pods"],
            scope: "Namespaced",
          },
        ],
        namespaceSelector: {
          matchExpressions: [
            { key: "keyhaven.dev/injection", operator: "In", values: ["enabled"] },
            {
              key: "kubernetes.io/metadata.name",
              operator: "NotIn",
              values: [options.releaseNamespace, "kube-system"],
            },
          ],
        },
        matchConditions: [
          {
            name: "opted-in",
            expression:
              "has(object.metadata.annotations) && 'keyhaven.dev/inject' in object.metadata.annotations && object.metadata.annotations['keyhaven.dev/inject'] == 'true'",
          },
        ],
        matchPolicy: "Equivalent",
        sideEffects: "None",
        timeoutSeconds: 5,
        failurePolicy: options.failurePolicy ?? "Fail",
        reinvocationPolicy: "IfNeeded",
      },
    ],
  });
}

export async function caBundleOf(plane: ControlPlane, name: string): Promise<string> {
  const c = await must(
    plane,
    "GET",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
  );
  const webhooks = c["webhooks"] as { clientConfig: { caBundle?: string } }[];
  return Buffer.from(webhooks[0]!.clientConfig.caBundle ?? "", "base64").toString("utf8");
}

export async function deleteWebhook(plane: ControlPlane, name: string): Promise<void> {
  await must(
    plane,
    "DELETE",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
    undefined,
    [200, 404],
  );
}

/** POSTs a Pod; `dryRun` runs admission (webhooks included) without storing it. */
export function createPod(
  plane: ControlPlane,
  namespace: string,
  pod: JsonObject,
  dryRun = false,
): Promise<{ status: number; body: unknown }> {
  return plane.request(
    "POST",
    `/api/v1/namespaces/${namespace}/pods${dryRun ? "?dryRun=All" : ""}`,
    pod,
  );
}

export const wasInjected = (pod: unknown): boolean =>
  (pod as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.[
    "keyhaven.dev/status"
  ] === "injected";

/**
 * Waits until the API server calls the webhook and gets a patch back: it only uses a new
 * caBundle or a webhook that just started listening after a moment. Dry-run creates go
 * through admission without storing anything.
 */
export async function untilInjecting(
  plane: ControlPlane,
  namespace: string,
  pod: JsonObject,
  limitMs = 30_000,
): Promise<void> {
  let last: unknown;
  await eventually(
    async () => {
      const res = await createPod(plane, namespace, pod, true);
      last = res.body;
      return res.status === 201 && wasInjected(res.body);
    },
    "the API server to call the webhook",
    limitMs,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last answer: ${JSON.stringify(last).slice(0, 500)}`);
  });
}

/**
 * The key service with web identity on the API server's JWKS and issuer, reading the
 * JWKS as its own ServiceAccount `keyhaven-system/keyhaven` (as in the cluster; the
 * default system:service-account-issuer-discovery binding allows it).
 */
export async function startClusterKeyService(
  plane: ControlPlane,
  spec: Omit<AccessControlSpec, "webIdentity">,
): Promise<Awaited<ReturnType<typeof startWithPrincipals>>> {
  const release = await createNamespace(plane, "keyhaven-system");
  await createServiceAccount(plane, release, "keyhaven");
  const bearer = join(tempDir("keyhaven-jwks-token-"), "token");
  writeFileSync(bearer, await requestToken(plane, release, "keyhaven"));
  return startWithPrincipals({
    ...spec,
    webIdentity: { jwksFile: `${plane.url}/openid/v1/jwks`, issuer: plane.issuer },
    args: [
      "--web-identity-jwks-ca",
      plane.caFile,
      "--web-identity-jwks-token",
      bearer,
      ...(spec.args ?? []),
    ],
  });
}

/**
 * The webhook (own CA, leader) in this process with the real client-node, registered by
 * URL as `configName`; resolves once the API server calls it for an opted-in pod in
 * `probeNamespace`.
 */
export async function startClusterWebhook(
  plane: ControlPlane,
  options: {
    configName: string;
    releaseNamespace: string;
    settings: InjectionSettings;
    probeNamespace: string;
    probePod: JsonObject;
  },
): Promise<RunningWebhook> {
  const port = await freePort();
  await registerWebhook(plane, {
    name: options.configName,
    url: `https://127.0.0.1:${port}/mutate-pods`,
    releaseNamespace: options.releaseNamespace,
  });
  const running = await startWebhook(
    {
      listen: { host: "127.0.0.1", port },
      configName: options.configName,
      namespace: options.releaseNamespace,
      serviceName: "keyhaven-webhook",
      secretName: "keyhaven-webhook-tls",
      settings: options.settings,
    },
    {
      resources: webhookResources(loadKubeConfig(plane.kubeconfig)),
      isLeader: () => true,
      logger: pino({ level: "silent" }),
    },
  );
  await untilInjecting(plane, options.probeNamespace, options.probePod);
  return running;
}
