/**
 * AdmissionReview round trips over real HTTPS: request in, patch out, and the patch
 * applied to the pod gives exactly the expected pod.
 */
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { reconcileCertificates, type WebhookCertificates } from "../src/webhook/certificates.js";
import type { JsonObject } from "../src/webhook/podMutation.js";
import { WebhookServer } from "../src/webhook/server.js";
import {
  SETTINGS,
  admissionReview,
  annotated,
  optedIn,
  ownedByReplicaSet,
  pod,
  post,
  runAsUser,
  withCommand,
  withEnv,
} from "./support/webhookFixtures.js";

const { applyPatch, deepClone } = fastJsonPatch;

const CIPHERTEXT = "AQICAHhQ3kF0ZXN0Y2lwaGVydGV4dA==";
const namespaces = new Map<string, Record<string, string>>([
  ["shop", { "keyhaven.dev/injection": "enabled" }],
  ["plain", {}],
]);

let server: WebhookServer;
let url: string;
let certs: WebhookCertificates;

beforeAll(async () => {
  const d = reconcileCertificates(undefined, new Date(), ["localhost"]);
  if (d.action !== "issue") throw new Error("no certificates");
  certs = d.certificates;
  server = new WebhookServer({
    certificate: { cert: certs.tlsCert, key: certs.tlsKey },
    logger: pino({ level: "silent" }),
    settings: SETTINGS,
    ownNamespace: "keyhaven",
    namespaceLabels: async (ns) => namespaces.get(ns),
  });
  const address = await server.listen("127.0.0.1", 0);
  url = `https://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await server.close();
});

async function admit(review: JsonObject) {
  const res = await post(url, JSON.stringify(review), certs.caBundle);
  expect(res.status).toBe(200);
  expect(res.json.apiVersion).toBe("admission.k8s.io/v1");
  expect(res.json.kind).toBe("AdmissionReview");
  return res.json.response as {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    status?: { code: number; message: string };
    warnings?: string[];
  };
}

function patched(original: JsonObject, patch: string | undefined): JsonObject {
  if (patch === undefined) return original;
  const ops = JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as Operation[];
  return applyPatch(deepClone(original), ops, true, false).newDocument as JsonObject;
}

const AWS_ENV = (serviceAccount: string) => [
  { name: "AWS_ROLE_ARN", value: `arn:aws:iam::000000000000:role/shop/${serviceAccount}` },
  {
    name: "AWS_WEB_IDENTITY_TOKEN_FILE",
    value: "/var/run/secrets/keyhaven.dev/serviceaccount/token",
  },
  { name: "AWS_ENDPOINT_URL_KMS", value: "https://keyhaven.keyhaven.svc:8443" },
  { name: "AWS_ENDPOINT_URL_STS", value: "https://keyhaven.keyhaven.svc:8443" },
  { name: "AWS_REGION", value: "us-east-1" },
];
const TOKEN_MOUNT = {
  name: "keyhaven-token",
  mountPath: "/var/run/secrets/keyhaven.dev/serviceaccount",
  readOnly: true,
};
const TOKEN_VOLUME = {
  name: "keyhaven-token",
  projected: {
    sources: [
      { serviceAccountToken: { audience: "keyhaven", expirationSeconds: 600, path: "token" } },
    ],
  },
};

describe("admission over HTTPS", () => {
  it("injects a data key and an encrypted env value into a Deployment's pod: the exact expected pod", async () => {
    const input = pod(
      ownedByReplicaSet("web", "7d4b9c8f6"),
      annotated({ "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": "alias/shop/web" }),
      runAsUser(1000),
      withCommand(["/app/server"], ["--port", "8080"]),
      withEnv("DB_PASSWORD", `keyhaven:${CIPHERTEXT}`),
      withEnv("AWS_REGION", "eu-west-1"),
    );
    const response = await admit(admissionReview(input, { uid: "uid-golden-1" }));
    expect(response.uid).toBe("uid-golden-1");
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe("JSONPatch");
    expect(response.warnings).toBeUndefined();

    const plan = {
      dataKey: { keyId: "alias/shop/web", secretName: "keyhaven-dk-web-a4af8ca5" },
      env: [{ container: "app", name: "DB_PASSWORD", ciphertext: CIPHERTEXT }],
      workload: { namespace: "shop", serviceAccount: "web" },
    };
    const expected = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: "web-7d4b9c8f6-",
        labels: { app: "web", "pod-template-hash": "7d4b9c8f6" },
        ownerReferences: (input["metadata"] as JsonObject)["ownerReferences"],
        annotations: {
          "keyhaven.dev/inject": "true",
          "keyhaven.dev/data-key": "alias/shop/web",
          "keyhaven.dev/status": "injected",
        },
      },
      spec: {
        serviceAccountName: "web",
        securityContext: { runAsUser: 1000 },
        containers: [
          {
            name: "app",
            image: "registry.example/web:1",
            command: [
              "/bin/sh",
              "-c",
              'set -a && . "$1" && set +a && shift && exec "$@"',
              "keyhaven-env",
              "/var/run/keyhaven/env/app.env",
              "/app/server",
              "--port",
              "8080",
            ],
            env: [
              { name: "DB_PASSWORD", value: `keyhaven:${CIPHERTEXT}` },
              // The pod's own AWS_REGION is kept; the others are added.
              { name: "AWS_REGION", value: "eu-west-1" },
              ...AWS_ENV("web").filter((e) => e.name !== "AWS_REGION"),
            ],
            volumeMounts: [
              TOKEN_MOUNT,
              { name: "keyhaven-secrets", mountPath: "/var/run/keyhaven", readOnly: true },
            ],
          },
        ],
        volumes: [
          TOKEN_VOLUME,
          { name: "keyhaven-secrets", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        ],
        initContainers: [
          {
            name: "keyhaven-agent",
            image: "ghcr.io/keyhaven/keyhaven:0.1.0",
            args: ["agent"],
            env: [
              ...AWS_ENV("web"),
              { name: "KEYHAVEN_AGENT_PLAN", value: JSON.stringify(plan) },
              { name: "KEYHAVEN_AGENT_DIR", value: "/var/run/keyhaven" },
              {
                name: "POD_NAMESPACE",
                valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
              },
              { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            ],
            volumeMounts: [
              TOKEN_MOUNT,
              { name: "keyhaven-secrets", mountPath: "/var/run/keyhaven" },
            ],
            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              runAsUser: 1000,
              capabilities: { drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
          },
        ],
      },
    };
    const result = patched(input, response.patch);
    expect(result).toEqual(expected);

    // Reinvocation (reinvocationPolicy: IfNeeded) with the injected pod: nothing more to do.
    const again = await admit(admissionReview(result, { uid: "uid-golden-2" }));
    expect(again).toEqual({ uid: "uid-golden-2", allowed: true });
  });

  it("gives an opted-in pod without data key or encrypted env only the token and the AWS_* env", async () => {
    const input = pod(optedIn);
    const response = await admit(admissionReview(input));
    const result = patched(input, response.patch);
    expect(result).toEqual({
      ...input,
      metadata: {
        ...(input["metadata"] as JsonObject),
        annotations: { "keyhaven.dev/inject": "true", "keyhaven.dev/status": "injected" },
      },
      spec: {
        serviceAccountName: "web",
        containers: [
          {
            name: "app",
            image: "registry.example/web:1",
            env: AWS_ENV("web"),
            volumeMounts: [TOKEN_MOUNT],
          },
        ],
        volumes: [TOKEN_VOLUME],
      },
    });
  });

  it("runs the agent as a native sidecar with refresh, after a leading mesh sidecar", async () => {
    const input = pod(
      annotated({
        "keyhaven.dev/inject": "true",
        "keyhaven.dev/data-key": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "keyhaven.dev/refresh": "true",
      }),
      (p) => {
        (p["spec"] as JsonObject)["initContainers"] = [
          { name: "istio-proxy", image: "istio/proxyv2", restartPolicy: "Always" },
          { name: "migrate", image: "registry.example/migrate:1" },
        ];
      },
    );
    const response = await admit(admissionReview(input));
    const spec = patched(input, response.patch)["spec"] as JsonObject;
    const inits = spec["initContainers"] as JsonObject[];
    expect(inits.map((c) => c["name"])).toEqual(["istio-proxy", "keyhaven-agent", "migrate"]);
    expect(inits[1]!["restartPolicy"]).toBe("Always");
    expect(inits[1]!["args"]).toEqual(["agent", "--refresh-interval", "300"]);
    expect(inits[1]!["startupProbe"]).toMatchObject({
      exec: { command: ["test", "-f", "/var/run/keyhaven/.ready"] },
    });
    // Other init containers get the credentials environment too.
    expect((inits[2]!["env"] as JsonObject[]).map((e) => e["name"])).toContain("AWS_ROLE_ARN");
    expect(response.warnings).toEqual([expect.stringContaining("no runAsUser")]);
  });

  it("leaves pods without the annotation untouched", async () => {
    const input = pod(withEnv("X", `keyhaven:${CIPHERTEXT}`));
    expect(await admit(admissionReview(input, { uid: "u1" }))).toEqual({
      uid: "u1",
      allowed: true,
    });
  });

  it("never mutates its own namespace or kube-system, nor namespaces without the label", async () => {
    for (const namespace of ["keyhaven", "kube-system", "plain"]) {
      const response = await admit(admissionReview(pod(optedIn), { namespace }));
      expect(response.allowed).toBe(true);
      expect(response.patch).toBeUndefined();
      expect(response.warnings?.[0]).toMatch(/keyhaven:/);
    }
  });

  it("ignores other kinds and operations", async () => {
    expect(
      (await admit(admissionReview(pod(optedIn), { operation: "UPDATE" }))).patch,
    ).toBeUndefined();
    expect((await admit(admissionReview(pod(optedIn), { kind: "Secret" }))).patch).toBeUndefined();
  });

  it("refuses an opted-in pod it cannot inject, with a message saying what to fix", async () => {
    const bad = await admit(
      admissionReview(pod(optedIn, withEnv("TOKEN", "keyhaven:not base64!")), { uid: "u2" }),
    );
    expect(bad).toEqual({
      uid: "u2",
      allowed: false,
      status: {
        code: 403,
        message: expect.stringContaining(
          'env TOKEN of container app starts with "keyhaven:" but the rest is not base64',
        ),
      },
    });
    const badName = await admit(
      admissionReview(pod(optedIn, withEnv("my.var", `keyhaven:${CIPHERTEXT}`))),
    );
    expect(badName.allowed).toBe(false);
    expect(badName.status?.message).toMatch(/not a shell identifier/);
    const badKey = await admit(
      admissionReview(
        pod(
          annotated({ "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": "alias with space" }),
        ),
      ),
    );
    expect(badKey.allowed).toBe(false);
    expect(badKey.status?.message).toMatch(/keyhaven.dev\/data-key must be a key id/);
  });

  it("answers bad requests with a valid AdmissionReview carrying the uid", async () => {
    const notJson = await post(url, "{not json", certs.caBundle);
    expect(notJson.json).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid: "",
        allowed: false,
        status: { code: 400, message: expect.stringMatching(/not JSON/) },
      },
    });
    const noKind = await admit({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: "u3" },
    });
    expect(noKind).toMatchObject({ uid: "u3", allowed: false, status: { code: 400 } });
    const wrongVersion = await admit({
      ...admissionReview(pod(optedIn), { uid: "u4" }),
      apiVersion: "admission.k8s.io/v1beta1",
    });
    expect(wrongVersion).toMatchObject({
      uid: "u4",
      allowed: false,
      status: { code: 400, message: expect.stringMatching(/apiVersion/) },
    });
  });

  it("turns an unexpected failure into a refusal with the uid, not a crash", async () => {
    const failing = new WebhookServer({
      certificate: { cert: certs.tlsCert, key: certs.tlsKey },
      logger: pino({ level: "silent" }),
      settings: SETTINGS,
      ownNamespace: "keyhaven",
      namespaceLabels: async () => {
        throw new Error("boom");
      },
    });
    const address = await failing.listen("127.0.0.1", 0);
    try {
      const res = await post(
        `https://127.0.0.1:${address.port}`,
        JSON.stringify(admissionReview(pod(optedIn), { uid: "u5" })),
        certs.caBundle,
      );
      expect(res.json.response).toEqual({
        uid: "u5",
        allowed: false,
        status: { code: 500, message: expect.stringMatching(/internal error/) },
      });
      const health = await post(`https://127.0.0.1:${address.port}`, "", certs.caBundle, "/nope");
      expect(health.status).toBe(404);
    } finally {
      await failing.close();
    }
  });

  it("serves a replaced certificate on new connections without a restart", async () => {
    const before = await post(url, JSON.stringify(admissionReview(pod())), certs.caBundle);
    const d = reconcileCertificates({ ...certs, tlsKey: "unreadable" }, new Date(), ["localhost"]);
    if (d.action !== "issue") throw new Error("expected a new certificate");
    server.setCertificate({ cert: d.certificates.tlsCert, key: d.certificates.tlsKey });
    try {
      const after = await post(
        url,
        JSON.stringify(admissionReview(pod())),
        d.certificates.caBundle,
      );
      expect(after.json.response.allowed).toBe(true);
      expect(after.fingerprint256).not.toBe(before.fingerprint256);
    } finally {
      server.setCertificate({ cert: certs.tlsCert, key: certs.tlsKey });
    }
  });
});
