/** Pods and AdmissionReviews for the webhook tests (small builders, cert-manager style). */
import { request } from "node:https";
import type { InjectionSettings, JsonObject } from "../../src/webhook/podMutation.js";

export const SETTINGS: InjectionSettings = {
  kmsEndpoint: "https://keyhaven.keyhaven.svc:8443",
  stsEndpoint: "https://keyhaven.keyhaven.svc:8443",
  region: "us-east-1",
  roleArn: "arn:aws:iam::000000000000:role/{namespace}/{serviceAccount}",
  agentImage: "ghcr.io/keyhaven/keyhaven:0.1.0",
  tokenExpirationSeconds: 600,
  refreshIntervalSeconds: 300,
};

type PodOption = (pod: JsonObject) => void;

export function pod(...options: PodOption[]): JsonObject {
  const p: JsonObject = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-", labels: { app: "web" } },
    spec: {
      serviceAccountName: "web",
      containers: [{ name: "app", image: "registry.example/web:1" }],
    },
  };
  for (const o of options) o(p);
  return p;
}

const meta = (p: JsonObject) => p["metadata"] as JsonObject;
const spec = (p: JsonObject) => p["spec"] as JsonObject;
const containers = (p: JsonObject) => spec(p)["containers"] as JsonObject[];

export const annotated =
  (annotations: Record<string, string>): PodOption =>
  (p) => {
    meta(p)["annotations"] = { ...((meta(p)["annotations"] as JsonObject) ?? {}), ...annotations };
  };
export const optedIn = annotated({ "keyhaven.dev/inject": "true" });
export const withEnv =
  (name: string, value: string, container = 0): PodOption =>
  (p) => {
    const c = containers(p)[container]!;
    c["env"] = [...((c["env"] as JsonObject[]) ?? []), { name, value }];
  };
export const withCommand =
  (command: string[], args?: string[], container = 0): PodOption =>
  (p) => {
    const c = containers(p)[container]!;
    c["command"] = command;
    if (args) c["args"] = args;
  };
export const ownedByReplicaSet =
  (deployment: string, hash: string): PodOption =>
  (p) => {
    meta(p)["generateName"] = `${deployment}-${hash}-`;
    meta(p)["labels"] = { ...(meta(p)["labels"] as JsonObject), "pod-template-hash": hash };
    meta(p)["ownerReferences"] = [
      {
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        name: `${deployment}-${hash}`,
        uid: "5d3c1c9e-0000-4000-8000-000000000001",
        controller: true,
        blockOwnerDeletion: true,
      },
    ];
  };
export const runAsUser =
  (uid: number): PodOption =>
  (p) => {
    spec(p)["securityContext"] = { runAsUser: uid };
  };

export function admissionReview(
  object: JsonObject | null,
  overrides: { uid?: string; namespace?: string; operation?: string; kind?: string } = {},
): JsonObject {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: overrides.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "", version: "v1", kind: overrides.kind ?? "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: overrides.kind ?? "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      namespace: overrides.namespace ?? "shop",
      operation: overrides.operation ?? "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}

// Test responses are read field by field; the assertions are the type check.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Reply = any;

/**
 * POSTs a body to the webhook over HTTPS, verifying the server against `ca` and
 * `servername`, or (null) against the URL's own host, as the API server does.
 */
export function post(
  url: string,
  body: string | Buffer,
  ca: string,
  path = "/mutate-pods",
  servername: string | null = "localhost",
): Promise<{ status: number; json: Reply; fingerprint256: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: "POST",
        ca,
        ...(servername !== null && { servername }),
        agent: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const socket = res.socket as import("node:tls").TLSSocket;
          resolve({
            status: res.statusCode ?? 0,
            json: text.startsWith("{") ? JSON.parse(text) : text,
            fingerprint256: socket.getPeerCertificate?.().fingerprint256 ?? "",
          });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
