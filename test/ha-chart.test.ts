/**
 * charts/keyhaven with store.type=kubernetes on the real API server: rendered by the real
 * Helm (`helm template`), applied with kubectl, then three `keyhaven serve` processes with
 * the rendered Deployment's store flags, authenticated as the chart's key-service
 * ServiceAccount (TokenRequest tokens). kube-up runs no kubelet, so the Deployment's Pods
 * never start: the processes stand in for them with the same identity, which is what the
 * chart's RBAC governs. The service works on that Role alone (enough), and the identity
 * reaches nothing outside the release namespace, nor other kinds or Leases (namespaced,
 * nothing more).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  EncryptCommand,
  ListGrantsCommand,
  RevokeGrantCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TIMER_LEASE } from "../src/cmd/serveStore.js";
import { CHART, parseManifests, renderText, type K8sObject } from "./chart/support.js";
import { eventually } from "./kube/drive.js";
import {
  createNamespace,
  serviceAccountToken,
  startControlPlane,
  type ControlPlane,
} from "./support/kubeUp.js";
import { kmsClient, spawnReplicas, tempDir, type SpawnedServer } from "./support/server.js";
import { kubectl, runTool } from "./support/tools.js";

let plane: ControlPlane;
let ns: string;
let other: string;
let objects: K8sObject[];
let token: string;
const replicas: SpawnedServer[] = [];
let clients: KMSClient[] = [];

const named = <T = K8sObject>(kind: string, name: string) =>
  objects.find((o) => o.kind === kind && (o.metadata as { name: string }).name === name) as
    T | undefined;

beforeAll(async () => {
  plane = await startControlPlane();
  ns = await createNamespace(plane, "kh-ha");
  other = await createNamespace(plane, "kh-other");
  const text = renderText({ name: "kh", namespace: ns, values: { store: { type: "kubernetes" } } });
  objects = parseManifests(text);
  const file = join(tempDir("keyhaven-ha-chart-"), "rendered.yaml");
  writeFileSync(file, text);
  const applied = await runTool(kubectl(), ["apply", "-n", ns, "-f", file], {
    kubeconfig: plane.kubeconfig,
  });
  expect(applied.code, `${CHART}: kubectl apply\n${applied.stderr}`).toBe(0);
  const deployment = named<{
    spec: {
      replicas: number;
      template: {
        spec: { serviceAccountName: string; containers: { name: string; args: string[] }[] };
      };
    };
  }>("Deployment", "kh-keyhaven")!;
  expect(deployment.spec.replicas).toBe(3);
  const pod = deployment.spec.template.spec;
  token = await serviceAccountToken(plane, ns, pod.serviceAccountName);
  // The rendered container's own store flags, with a kubeconfig for its ServiceAccount.
  const storeFlags = pod.containers
    .flatMap((c) => c.args ?? [])
    .filter((a) => a.startsWith("--store"));
  expect(storeFlags).toEqual(["--store=kubernetes", `--store-namespace=${ns}`]);
  const args = [...storeFlags, "--kubeconfig", plane.kubeconfigFor(token)];
  replicas.push(...(await spawnReplicas(3, args, "keyhaven-ha-chart-data-")));
  clients = replicas.map((r) => kmsClient(r));
}, 300_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await plane?.stop();
});

it("renders a PodDisruptionBudget and topology spread for the 3 replicas, and a Role (no ClusterRole) for the store", () => {
  expect(named("PodDisruptionBudget", "kh-keyhaven")).toBeDefined();
  const deployment = named<{
    spec: { template: { spec: { topologySpreadConstraints?: unknown[] } } };
  }>("Deployment", "kh-keyhaven")!;
  expect(deployment.spec.template.spec.topologySpreadConstraints?.length).toBeGreaterThan(0);
  expect(named("Role", "kh-keyhaven")).toBeDefined();
  expect(
    objects.filter(
      (o) =>
        o.kind === "ClusterRole" &&
        (o.metadata as { name: string }).name.startsWith("kh-keyhaven") &&
        !(o.metadata as { name: string }).name.startsWith("kh-keyhaven-controller"),
    ),
  ).toEqual([]);
});

it("three replicas with the chart's ServiceAccount serve every store write and the timer Lease", async () => {
  const [a, b, c] = clients as [KMSClient, KMSClient, KMSClient];
  const keyId = (await a.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  const { CiphertextBlob } = await b.send(
    new EncryptCommand({ KeyId: keyId, Plaintext: new TextEncoder().encode("chart") }),
  );
  const { Plaintext } = await c.send(new DecryptCommand({ CiphertextBlob }));
  expect(new TextDecoder().decode(Plaintext)).toBe("chart");
  await b.send(new CreateAliasCommand({ AliasName: "alias/chart", TargetKeyId: keyId }));
  const { GrantId } = await c.send(
    new CreateGrantCommand({
      KeyId: keyId,
      GranteePrincipal: "arn:aws:iam::000000000000:role/app",
      Operations: ["Decrypt"],
    }),
  );
  await eventually(
    async () => ((await a.send(new ListGrantsCommand({ KeyId: keyId }))).Grants ?? []).length === 1,
    "the grant on another replica",
  );
  await a.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
  await b.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
  await c.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
  await a.send(new RevokeGrantCommand({ KeyId: keyId, GrantId }));
  await b.send(new DeleteAliasCommand({ AliasName: "alias/chart" }));
  // The timer Lease: created, read and renewed by the ServiceAccount.
  const holder = await eventually(
    async () => {
      const lease = await plane.request(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${TIMER_LEASE}`,
      );
      return (
        lease.status === 200 &&
        (lease.body as { spec: { holderIdentity?: string } }).spec.holderIdentity
      );
    },
    "a timer Lease holder",
    30_000,
    200,
  );
  expect(holder).toBeTruthy();
  for (const r of replicas) expect(`${r.output()}${r.stderr()}`).not.toMatch(/forbidden/i);
}, 120_000);

it("the ServiceAccount reaches nothing outside its namespace, no other kind and no other Lease", async () => {
  const as = (method: string, path: string, body?: unknown) =>
    plane.requestAs(token, method, path, body).then((r) => r.status);
  const secret = (namespace: string) => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "probe", namespace },
    data: {},
  });
  // What the store does, in its namespace: allowed.
  expect(await as("GET", `/api/v1/namespaces/${ns}/secrets`)).toBe(200);
  expect(await as("POST", `/api/v1/namespaces/${ns}/secrets`, secret(ns))).toBe(201);
  // Another namespace, or all of them: forbidden.
  expect(await plane.request("POST", `/api/v1/namespaces/${other}/secrets`, secret(other))).toEqual(
    expect.objectContaining({ status: 201 }),
  );
  expect(await as("GET", `/api/v1/namespaces/${other}/secrets/probe`)).toBe(403);
  expect(await as("GET", `/api/v1/namespaces/${other}/secrets`)).toBe(403);
  expect(await as("POST", `/api/v1/namespaces/${other}/secrets`, secret(other))).toBe(403);
  expect(await as("DELETE", `/api/v1/namespaces/${other}/secrets/probe`)).toBe(403);
  expect(await as("GET", "/api/v1/secrets")).toBe(403);
  // Other kinds and verbs, and Leases but the timer Lease: forbidden.
  expect(await as("GET", `/api/v1/namespaces/${ns}/configmaps`)).toBe(403);
  expect(await as("GET", `/api/v1/namespaces/${ns}/pods`)).toBe(403);
  expect(await as("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`)).toBe(403);
  expect(await as("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/other`)).toBe(403);
  expect(await as("DELETE", `/api/v1/namespaces/${ns}/secrets`)).toBe(403); // deletecollection
  const patch = await plane.requestAs(
    token,
    "PATCH",
    `/api/v1/namespaces/${ns}/secrets/probe`,
    { metadata: { labels: { x: "y" } } },
    "application/merge-patch+json",
  );
  expect(patch.status).toBe(403);
});
