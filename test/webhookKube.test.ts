/**
 * The real @kubernetes/client-node behind the webhook's and the agent's interfaces,
 * against a small loopback fake of the API server (Secrets, Namespaces,
 * MutatingWebhookConfigurations; resourceVersion, 409 on conflicts, JSON patch with
 * `test`, 403 for a ServiceAccount without rights).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataKeyStoreError } from "../src/agent/dataKeyStore.js";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { secretDataKeyStore } from "../src/kube/secretDataKeyStore.js";
import { webhookResources } from "../src/kube/webhookResources.js";
import { tempDir } from "./support/server.js";
import { ResourceConflict } from "../src/webhook/resources.js";

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

let server: Server;
let kc: ReturnType<typeof loadKubeConfig>;
let forbiddenKc: ReturnType<typeof loadKubeConfig>;
const objects = new Map<string, Obj>();
let version = 100;

function status(res: ServerResponse, code: number, reason: string) {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason,
      code,
      message: reason,
    }),
  );
}

function send(res: ServerResponse, obj: unknown, code = 200) {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(obj));
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  if (req.headers.authorization === "Bearer forbidden") return status(res, 403, "Forbidden");
  const path = (req.url ?? "").split("?")[0]!;
  const m =
    /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path) ??
    /^\/apis\/admissionregistration\.k8s\.io\/v1\/(mutatingwebhookconfigurations)\/([^/]+)$/.exec(
      path,
    ) ??
    /^\/api\/v1\/(namespaces)\/([^/]+)$/.exec(path);
  if (!m) return status(res, 404, "NotFound");
  const collection = path.includes("/secrets") ? `secrets/${m[1]}` : m[1]!;
  const key = (name: string) => `${collection}/${name}`;
  if (req.method === "POST") {
    const obj = (await body(req)) as Obj;
    const name = obj.metadata["name"] as string;
    if (objects.has(key(name))) return status(res, 409, "AlreadyExists");
    obj.metadata["resourceVersion"] = String(++version);
    objects.set(key(name), obj);
    return send(res, obj, 201);
  }
  const existing = objects.get(key(m[2]!));
  if (!existing) return status(res, 404, "NotFound");
  if (req.method === "GET") return send(res, existing);
  if (req.method === "PUT") {
    const obj = (await body(req)) as Obj;
    if (obj.metadata["resourceVersion"] !== existing.metadata["resourceVersion"])
      return status(res, 409, "Conflict");
    obj.metadata["resourceVersion"] = String(++version);
    objects.set(key(m[2]!), obj);
    return send(res, obj);
  }
  if (req.method === "PATCH") {
    if (req.headers["content-type"] !== "application/json-patch+json")
      return status(res, 415, "UnsupportedMediaType");
    try {
      const next = fastJsonPatch.applyPatch(
        structuredClone(existing),
        (await body(req)) as Operation[],
        true,
        false,
      ).newDocument;
      next.metadata["resourceVersion"] = String(++version);
      objects.set(key(m[2]!), next);
      return send(res, next);
    } catch {
      return status(res, 422, "Invalid"); // a failed `test` op
    }
  }
  status(res, 405, "MethodNotAllowed");
}

/** A kubeconfig file for the fake, loaded the way `keyhaven controller --kubeconfig` does. */
function kubeConfig(url: string, token: string) {
  const file = join(tempDir("keyhaven-kubeconfig-"), "config");
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: "${url}", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: ${token}}\ncontexts:\n- name: c\n  context: {cluster: fake, user: u}\ncurrent-context: c\n`,
  );
  return loadKubeConfig(file);
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kc = kubeConfig(url, "ok");
  forbiddenKc = kubeConfig(url, "forbidden");
  objects.set("namespaces/shop", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "shop", labels: { "keyhaven.dev/injection": "enabled" } },
  });
  objects.set("mutatingwebhookconfigurations/keyhaven", {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "keyhaven", resourceVersion: "1" },
    webhooks: [
      {
        name: "pods.keyhaven.dev",
        clientConfig: { service: { name: "keyhaven-webhook", namespace: "keyhaven" } },
      },
      {
        name: "pods2.keyhaven.dev",
        clientConfig: { caBundle: Buffer.from("old").toString("base64") },
      },
    ],
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe("webhookResources over client-node", () => {
  it("creates, reads and replaces the certificate Secret with optimistic concurrency", async () => {
    const r = webhookResources(kc);
    expect(await r.getSecret("keyhaven", "tls")).toBeUndefined();
    await r.putSecret("keyhaven", "tls", { "tls.crt": "PEM-A" });
    const first = await r.getSecret("keyhaven", "tls");
    expect(first?.data).toEqual({ "tls.crt": "PEM-A" });
    await expect(r.putSecret("keyhaven", "tls", { "tls.crt": "PEM-X" })).rejects.toBeInstanceOf(
      ResourceConflict,
    );
    await r.putSecret("keyhaven", "tls", { "tls.crt": "PEM-B" }, first!.resourceVersion);
    await expect(
      r.putSecret("keyhaven", "tls", { "tls.crt": "PEM-C" }, first!.resourceVersion),
    ).rejects.toBeInstanceOf(ResourceConflict);
    expect((await r.getSecret("keyhaven", "tls"))?.data).toEqual({ "tls.crt": "PEM-B" });
  });

  it("reads and sets the caBundle of every webhook; reads namespace labels", async () => {
    const r = webhookResources(kc);
    expect(await r.getCaBundles("keyhaven")).toEqual(["", "old"]);
    await r.setCaBundle("keyhaven", "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n");
    expect(await r.getCaBundles("keyhaven")).toEqual([
      "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
      "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
    ]);
    expect(await r.getCaBundles("missing")).toBeUndefined();
    expect(await r.getNamespaceLabels("shop")).toEqual({ "keyhaven.dev/injection": "enabled" });
    expect(await r.getNamespaceLabels("nope")).toBeUndefined();
  });
});

describe("secretDataKeyStore over client-node", () => {
  it("keeps ciphertext and key id, creates only if absent", async () => {
    const store = secretDataKeyStore(kc, "shop");
    expect(await store.get("keyhaven-dk-web")).toBeUndefined();
    const value = {
      ciphertext: Buffer.from([1, 2, 3, 250]),
      keyId: "arn:aws:kms:us-east-1:000000000000:key/k",
    };
    expect(await store.create("keyhaven-dk-web", value)).toBe("created");
    expect(await store.create("keyhaven-dk-web", { ...value, ciphertext: Buffer.from([9]) })).toBe(
      "exists",
    );
    expect(await store.get("keyhaven-dk-web")).toEqual(value);
    const secret = objects.get("secrets/shop/keyhaven-dk-web")!;
    expect(Object.keys(secret["data"] as object).sort()).toEqual(["ciphertext", "key-id"]);
  });

  it("a ServiceAccount without rights gets a permanent error that says which Role it needs", async () => {
    const store = secretDataKeyStore(forbiddenKc, "shop");
    const err = await store.get("keyhaven-dk-web").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataKeyStoreError);
    expect(err).toMatchObject({
      permanent: true,
      message:
        "the pod's ServiceAccount may not read Secret shop/keyhaven-dk-web; grant it get and create on secrets (see docs/injection.md)",
    });
  });
});
