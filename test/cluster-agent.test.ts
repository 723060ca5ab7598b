/**
 * `keyhaven agent` against the real API server (kubeUp.ts), run as the kubelet would run
 * the init container of a pod the API server STORED after the webhook mutated it: its
 * env (fieldRefs resolved), the projected `keyhaven` token (a TokenRequest bound to the
 * pod, with the volume's audience and lifetime), the memory volume (a temp folder), and
 * for the data-key Secret the workload ServiceAccount's own API token with exactly the
 * RBAC of examples/orders-api-deployment.yaml (the Role docs/injection.md documents).
 * A rule missing from that Role fails here.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workloadContext } from "../src/agent/plan.js";
import type { JsonObject } from "../src/webhook/podMutation.js";
import type { RunningWebhook } from "../src/webhook/startWebhook.js";
import { ADMINISTRATOR, type AccessControlServer } from "./support/accessControl.js";
import { eventually } from "./kube/drive.js";
import {
  createPod,
  createServiceAccount,
  kubeconfigWithToken,
  must,
  requestToken,
  startClusterKeyService,
  startClusterWebhook,
  wasInjected,
  CLUSTER_TIMEOUT_MS,
} from "./support/clusterWebhook.js";
import { startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, MAIN_JS, REPO_ROOT, tempDir } from "./support/server.js";
import { optedIn, pod, SETTINGS } from "./support/webhookFixtures.js";

const ACCOUNT = "000000000000";
const EXAMPLE = join(REPO_ROOT, "examples", "orders-api-deployment.yaml");

let plane: ControlPlane;
let server: AccessControlServer;
let admin: KMSClient;
let webhook: RunningWebhook;
let ciphertext: string;
let deployment: JsonObject;

/** Applies the example's Namespace, ServiceAccount, Role and RoleBinding as they are. */
async function applyExampleRbac(): Promise<void> {
  const docs = parseAllDocuments(readFileSync(EXAMPLE, "utf8")).map((d) => d.toJS() as JsonObject);
  const path: Record<string, string> = {
    Namespace: "/api/v1/namespaces",
    ServiceAccount: "/api/v1/namespaces/shop/serviceaccounts",
    Role: "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles",
    RoleBinding: "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings",
  };
  for (const doc of docs) {
    const kind = doc["kind"] as string;
    if (kind === "Deployment") deployment = doc;
    if (path[kind]) await must(plane, "POST", path[kind], doc);
  }
}

beforeAll(async () => {
  plane = await startControlPlane();
  await applyExampleRbac();
  server = await startClusterKeyService(plane, {
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
    },
    serviceAccounts: [
      {
        namespace: "shop",
        name: "*",
        policies: [
          {
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: "*" },
            ],
          },
        ],
      },
    ],
  });
  admin = kmsClient(server.handle("admin"));
  const key = await admin.send(new CreateKeyCommand({ Description: "orders data keys" }));
  await admin.send(
    new CreateAliasCommand({
      AliasName: "alias/shop/orders",
      TargetKeyId: key.KeyMetadata!.KeyId!,
    }),
  );
  // Bound to the workload that will read it (docs/injection.md, "Bound to the workload").
  const enc = await admin.send(
    new EncryptCommand({
      KeyId: "alias/shop/orders",
      Plaintext: Buffer.from("hunter2"),
      EncryptionContext: workloadContext({ namespace: "shop", serviceAccount: "orders-api" }),
    }),
  );
  ciphertext = Buffer.from(enc.CiphertextBlob!).toString("base64");
  webhook = await startClusterWebhook(plane, {
    configName: "keyhaven",
    releaseNamespace: "keyhaven-system",
    settings: {
      ...SETTINGS,
      kmsEndpoint: server.url,
      stsEndpoint: server.url,
      region: server.region,
    },
    probeNamespace: "shop",
    probePod: pod(optedIn, (p) => ((p["spec"] as JsonObject)["serviceAccountName"] = "orders-api")),
  });
}, CLUSTER_TIMEOUT_MS);

afterAll(async () => {
  await webhook?.stop();
  admin?.destroy();
  await server?.stop();
  await plane?.stop();
});

/**
 * The Deployment's pod as its ReplicaSet `<workload>-<hash>` would create it, with an
 * encrypted env value, created through the API server (and so the webhook); returns
 * the stored pod.
 */
async function createWorkloadPod(
  serviceAccount: string,
  hash: string,
  workload = "orders-api",
): Promise<JsonObject> {
  const template = structuredClone((deployment["spec"] as { template: JsonObject }).template) as {
    metadata: JsonObject;
    spec: { serviceAccountName: string; containers: JsonObject[] };
  };
  template.spec.serviceAccountName = serviceAccount;
  template.spec.containers[0]!["env"] = [{ name: "DB_PASSWORD", value: `keyhaven:${ciphertext}` }];
  const body = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...template.metadata,
      generateName: `${workload}-${hash}-`,
      labels: { ...(template.metadata["labels"] as object), "pod-template-hash": hash },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: `${workload}-${hash}`,
          uid: "5d3c1c9e-0000-4000-8000-000000000001",
          controller: true,
        },
      ],
    },
    spec: template.spec,
  };
  const created = await createPod(plane, "shop", body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const name = (created.body as { metadata: { name: string } }).metadata.name;
  const stored = await must(plane, "GET", `/api/v1/namespaces/shop/pods/${name}`);
  expect(wasInjected(stored)).toBe(true);
  return stored;
}

/** Runs the stored pod's keyhaven-agent init container as the kubelet would. */
async function runAgentOf(stored: JsonObject) {
  const meta = stored["metadata"] as { name: string; namespace: string; uid: string };
  const spec = stored["spec"] as {
    serviceAccountName: string;
    volumes: {
      name: string;
      projected?: {
        sources: { serviceAccountToken?: { audience: string; expirationSeconds: number } }[];
      };
    }[];
    initContainers: {
      name: string;
      env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
    }[];
  };
  const agent = spec.initContainers.find((c) => c.name === "keyhaven-agent")!;
  const projected = spec.volumes.find((v) => v.name === "keyhaven-token")!.projected!.sources[0]!
    .serviceAccountToken!;
  const work = tempDir("keyhaven-kubelet-");
  const podRef = { name: meta.name, uid: meta.uid };
  // The projected volume: a token bound to this pod, the volume's audience and lifetime.
  const tokenFile = join(work, "token");
  writeFileSync(
    tokenFile,
    await requestToken(plane, meta.namespace, spec.serviceAccountName, {
      audiences: [projected.audience],
      expirationSeconds: projected.expirationSeconds,
      pod: podRef,
    }),
  );
  // kube-api-access: the ServiceAccount's API token, the agent's only Kubernetes credential.
  const kubeconfig = kubeconfigWithToken(
    plane,
    await requestToken(plane, meta.namespace, spec.serviceAccountName, { pod: podRef }),
  );
  const fields: Record<string, string> = {
    "metadata.namespace": meta.namespace,
    "metadata.name": meta.name,
  };
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: work,
    KUBECONFIG: kubeconfig,
    KEYHAVEN_AGENT_TIMEOUT: "20",
  };
  for (const e of agent.env)
    env[e.name] = e.valueFrom ? fields[e.valueFrom.fieldRef.fieldPath]! : e.value!;
  expect(env["AWS_WEB_IDENTITY_TOKEN_FILE"]).toBe(
    "/var/run/secrets/keyhaven.dev/serviceaccount/token",
  );
  env["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile;
  const dir = join(work, "keyhaven-secrets"); // the memory volume at /var/run/keyhaven
  env["KEYHAVEN_AGENT_DIR"] = dir;
  const plan = JSON.parse(env["KEYHAVEN_AGENT_PLAN"]!) as { dataKey: { secretName: string } };
  return new Promise<{ code: number | null; stderr: string; dir: string; secretName: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [MAIN_JS, "agent"], {
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("error", reject);
      child.on("exit", (code) =>
        resolve({ code, stderr, dir, secretName: plan.dataKey.secretName }),
      );
    },
  );
}

/** Waits until RBAC (an informer cache in the API server) allows or denies as given. */
async function untilAuthorized(serviceAccount: string, verb: string, allowed: boolean) {
  await eventually(
    async () => {
      const review = await must(
        plane,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: `system:serviceaccount:shop:${serviceAccount}`,
            groups: ["system:serviceaccounts", "system:serviceaccounts:shop"],
            resourceAttributes: { namespace: "shop", verb, resource: "secrets" },
          },
        },
      );
      return (review["status"] as { allowed?: boolean }).allowed === allowed;
    },
    `${verb} secrets to be ${allowed ? "allowed" : "denied"} for ${serviceAccount}`,
    15_000,
    100,
  );
}

describe(
  "keyhaven agent from a stored, mutated pod on the real API server",
  { timeout: CLUSTER_TIMEOUT_MS },
  () => {
    it("writes the data key and the decrypted env value, and keeps the data key in a Secret with the documented Role", async () => {
      await untilAuthorized("orders-api", "create", true);
      const first = await runAgentOf(await createWorkloadPod("orders-api", "7d9f8b6c5"));
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toMatch(/data key for alias\/shop\/orders written to .*\(new\)/);
      expect(first.stderr).not.toContain("hunter2");
      const dataKey = readFileSync(join(first.dir, "data-key"));
      expect(dataKey).toHaveLength(32);
      expect(readFileSync(join(first.dir, "env", "api", "DB_PASSWORD"), "utf8")).toBe("hunter2");
      expect(readFileSync(join(first.dir, "env", "api.env"), "utf8")).toBe(
        "DB_PASSWORD='hunter2'\n",
      );

      // The Secret holds the ciphertext (never the plaintext), named after the workload.
      expect(first.secretName).toMatch(/^keyhaven-dk-orders-api-[0-9a-f]+$/);
      const secret = await must(
        plane,
        "GET",
        `/api/v1/namespaces/shop/secrets/${first.secretName}`,
      );
      const data = secret["data"] as Record<string, string>;
      const stored = Buffer.from(data["ciphertext"]!, "base64");
      expect(stored).toEqual(readFileSync(join(first.dir, "data-key.ciphertext")));
      const check = await admin.send(
        new DecryptCommand({
          CiphertextBlob: stored,
          EncryptionContext: workloadContext({ namespace: "shop", serviceAccount: "orders-api" }),
        }),
      );
      expect(Buffer.from(check.Plaintext!)).toEqual(dataKey);
      expect(JSON.stringify(secret)).not.toContain(dataKey.toString("base64"));

      // A pod of the next rollout (another ReplicaSet) reads the Secret: the same data key.
      const second = await runAgentOf(await createWorkloadPod("orders-api", "5c4b3a291"));
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toContain("(reused)");
      expect(second.secretName).toBe(first.secretName);
      expect(readFileSync(join(second.dir, "data-key"))).toEqual(dataKey);
    });

    it("each rule of the Role is needed: without create, or without get, the agent fails with what to grant", async () => {
      for (const [serviceAccount, verbs, missing, message] of [
        ["no-create", ["get"], "create", /may not create Secret shop\/keyhaven-dk-no-create-/],
        ["no-get", ["create"], "get", /may not read Secret shop\/keyhaven-dk-no-get-/],
      ] as const) {
        await createServiceAccount(plane, "shop", serviceAccount);
        await must(plane, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles", {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { name: serviceAccount },
          rules: [{ apiGroups: [""], resources: ["secrets"], verbs }],
        });
        await must(
          plane,
          "POST",
          "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings",
          {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "RoleBinding",
            metadata: { name: serviceAccount },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: serviceAccount },
            subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace: "shop" }],
          },
        );
        await untilAuthorized(serviceAccount, verbs[0], true);
        const run = await runAgentOf(
          await createWorkloadPod(serviceAccount, "6f7e8d9c0", serviceAccount),
        );
        expect(run.code, missing).toBe(1);
        expect(run.stderr, missing).toMatch(message);
        expect(run.stderr).toContain("grant it get and create on secrets (see docs/injection.md)");
      }
    });
  },
);
