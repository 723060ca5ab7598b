/**
 * KmsSecret on the real API server: `keyhaven controller` (the built program, with the
 * chart's operator RBAC, as a principal that only key policies allow) turns KmsSecrets
 * sealed by `keyhaven seal` (online and offline) into Secrets; a value moved to another
 * namespace or entry fails with a condition naming the entry; rotation + reseal; both
 * deletion policies; a key policy that lets the controller open team-a's values and
 * not team-b's (kms:EncryptionContext:keyhaven.dev/namespace).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  GetPublicKeyCommand,
  RotateKeyOnDemandCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import type { KmsSecret } from "../src/api/v1alpha1/types.js";
import { runReseal, runSeal } from "../src/cmd/seal.js";
import { loadConfig, type ResealConfig, type SealConfig } from "../src/config/config.js";
import { readCiphertextHeader } from "../src/kms/crypto/ciphertext.js";
import { eventually } from "./kube/drive.js";
import {
  applyCrds,
  controllerIdentity,
  createObject,
  eventsOf,
  getObject,
  kmsEnvironment,
  mergeObject,
  startControllerProgram,
  waitReady,
  type ControllerProgram,
} from "./kube/realCluster.js";
import {
  ADMINISTRATOR,
  startWithPrincipals,
  type AccessControlServer,
} from "./support/accessControl.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { runHealthScript } from "./support/argoHealth.js";
import { kmsClient, REPO_ROOT, tempDir } from "./support/server.js";

const ADMIN = "arn:aws:iam::000000000000:user/admin";
const CONTROLLER = "arn:aws:iam::000000000000:role/keyhaven-controller";

let plane: ControlPlane;
let service: AccessControlServer;
let kms: KMSClient;
let controller: ControllerProgram;

/** A key policy: the admin does everything; the controller may Decrypt (under `condition`). */
const keyPolicy = (condition?: Record<string, unknown>) =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { AWS: ADMIN }, Action: "kms:*", Resource: "*" },
      {
        Sid: "ControllerOpensKmsSecrets",
        Effect: "Allow",
        Principal: { AWS: CONTROLLER },
        Action: "kms:Decrypt",
        Resource: "*",
        ...(condition && { Condition: condition }),
      },
    ],
  });

const createKey = async (policy = keyPolicy(), spec?: "RSA_2048") =>
  (
    await kms.send(
      new CreateKeyCommand({
        Policy: policy,
        ...(spec && { KeySpec: spec, KeyUsage: "ENCRYPT_DECRYPT" }),
      }),
    )
  ).KeyMetadata!.Arn!;

beforeAll(async () => {
  [plane, service] = await Promise.all([
    startControlPlane(),
    startWithPrincipals({
      principals: {
        admin: { principal: ADMIN, policies: [ADMINISTRATOR] },
        // No caller policy: the controller may do only what key policies allow it.
        controller: { principal: CONTROLLER },
      },
    }),
  ]);
  kms = kmsClient(service.handle("admin"));
  await applyCrds(plane);
  await createNamespace(plane, "keyhaven-system");
  const identity = await controllerIdentity(plane, "keyhaven-system", "keyhaven-controller");
  controller = await startControllerProgram(
    [
      "--kubeconfig",
      identity.kubeconfig,
      "--namespace",
      "keyhaven-system",
      "--metrics-listen",
      "127.0.0.1:0",
      "--disable-webhook",
      "--identity",
      "ctl-0",
      "--drift-check-interval",
      "2s",
    ],
    kmsEnvironment(service, service.as["controller"]!),
  );
}, 120_000);

afterAll(async () => {
  await controller?.kill();
  kms?.destroy();
  await service?.stop();
  await plane?.stop();
});

/**
 * A namespace where KmsSecrets may become Secrets: the chart's Role for
 * controller.kmsSecretNamespaces, bound to the controller's ServiceAccount.
 */
async function kmsSecretNamespace(name: string): Promise<string> {
  const ns = await createNamespace(plane, name);
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
  const role = await plane.request("POST", `${rbac}/roles`, {
    metadata: { name: "keyhaven-controller-kmssecrets" },
    rules: [
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "create", "update", "delete"] },
    ],
  });
  const binding = await plane.request("POST", `${rbac}/rolebindings`, {
    metadata: { name: "keyhaven-controller-kmssecrets" },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "keyhaven-controller-kmssecrets",
    },
    subjects: [
      { kind: "ServiceAccount", name: "keyhaven-controller", namespace: "keyhaven-system" },
    ],
  });
  expect([role.status, binding.status]).toEqual([201, 201]);
  return ns;
}

/** `keyhaven seal ARGS` (its real flag table) on a Secret, as the admin; the KmsSecret. */
async function seal(args: string[], secret: Record<string, unknown>): Promise<KmsSecret> {
  let out = "";
  await runSeal(loadConfig(["seal", ...args], {}) as SealConfig, {
    stdin: async () => JSON.stringify(secret),
    stdout: (t) => (out += t),
    kms,
  });
  return parse(out) as KmsSecret;
}

async function reseal(obj: KmsSecret): Promise<KmsSecret> {
  let out = "";
  await runReseal(loadConfig(["reseal"], {}) as ResealConfig, {
    stdin: async () => stringify(obj),
    stdout: (t) => (out += t),
    kms,
  });
  return parse(out) as KmsSecret;
}

const secretManifest = (ns: string, name: string, data: Record<string, string>, type?: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: ns, labels: { app: name }, annotations: { team: ns } },
  ...(type && { type }),
  stringData: data,
});

interface Secret {
  type: string;
  data: Record<string, string>;
  metadata: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
  };
}

const getSecret = async (ns: string, name: string) => {
  const res = await plane.request("GET", `/api/v1/namespaces/${ns}/secrets/${name}`);
  return res.status === 404 ? undefined : (res.body as Secret);
};
const decoded = (s: Secret | undefined) =>
  Object.fromEntries(
    Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]),
  );

async function apply(obj: KmsSecret): Promise<void> {
  const res = await createObject(plane, obj.metadata.namespace, obj as never);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** Waits for Ready=False with `reason`; returns the condition's message. */
/** Argo CD's health of a KmsSecret, by docs/argocd/kmssecret.lua (docs/observability.md). */
const argoHealth = (obj: unknown) =>
  runHealthScript(readFileSync(join(REPO_ROOT, "docs", "argocd", "kmssecret.lua"), "utf8"), obj);

async function waitFailed(ns: string, name: string, reason: string): Promise<string> {
  const obj = await eventually(
    async () => {
      const o = await getObject<KmsSecret>(plane, "KmsSecret", ns, name);
      const ready = findCondition(o?.status?.conditions, "Ready");
      return ready?.status === "False" && ready.reason === reason && o;
    },
    `KmsSecret ${ns}/${name} ${reason}`,
    30_000,
    100,
  );
  return findCondition(obj.status?.conditions, "Ready")!.message;
}

/** Nothing secret reached the object, its Events or the controller's logs. */
async function expectNothingLeaked(ns: string, name: string, secrets: string[]) {
  const obj = await getObject<KmsSecret>(plane, "KmsSecret", ns, name);
  const visible =
    JSON.stringify(obj?.status) +
    JSON.stringify(await eventsOf(plane, ns, name)) +
    controller.output();
  for (const s of secrets) expect(visible).not.toContain(s);
  for (const c of Object.values(obj?.spec.encryptedData ?? {}))
    expect(visible).not.toContain(c.slice(0, 40));
}

describe("KmsSecret", () => {
  it("sealed online: the Secret appears with the right data, type, labels and owner", async () => {
    const ns = await kmsSecretNamespace("online");
    const key = await createKey();
    const obj = await seal(
      ["--key", key],
      secretManifest(
        ns,
        "db",
        { username: "orders", password: "pa55-online" },
        "kubernetes.io/basic-auth",
      ),
    );
    await apply(obj);
    const ready = await waitReady<KmsSecret>(plane, "KmsSecret", ns, "db");
    expect(argoHealth(ready)).toEqual({
      status: "Healthy",
      message: findCondition(ready.status?.conditions, "Ready")!.message,
    });
    expect(ready.status?.entries).toEqual(["password", "username"]);
    expect(ready.status?.keyArn).toBe(key);
    const secret = await getSecret(ns, "db");
    expect(secret?.type).toBe("kubernetes.io/basic-auth");
    expect(decoded(secret)).toEqual({ username: "orders", password: "pa55-online" });
    expect(secret?.metadata.labels).toEqual({ app: "db" });
    expect(secret?.metadata.annotations).toEqual({ team: ns });
    expect(secret?.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: "KmsSecret",
        name: "db",
        uid: ready.metadata.uid,
        controller: true,
      }),
    ]);
    await expectNothingLeaked(ns, "db", ["pa55-online"]);
  });

  it("sealed offline with only the public key: the controller opens it with asymmetric Decrypt", async () => {
    const ns = await kmsSecretNamespace("offline");
    const key = await createKey(keyPolicy(), "RSA_2048");
    const file = join(tempDir("keyhaven-kmssecret-"), "pub.der");
    writeFileSync(file, (await kms.send(new GetPublicKeyCommand({ KeyId: key }))).PublicKey!);
    const big = "y".repeat(20_000);
    const obj = await seal(
      ["--key", key, "--public-key", file],
      secretManifest(ns, "tls", { big, small: "pa55-offline" }),
    );
    await apply(obj);
    await waitReady(plane, "KmsSecret", ns, "tls");
    expect(decoded(await getSecret(ns, "tls"))).toEqual({ big, small: "pa55-offline" });
    await expectNothingLeaked(ns, "tls", ["pa55-offline"]);
  });

  it("a ciphertext moved to another namespace or another entry fails with DecryptFailed naming the entry", async () => {
    const a = await kmsSecretNamespace("moved-a");
    const b = await kmsSecretNamespace("moved-b");
    const key = await createKey();
    const rsa = await createKey(keyPolicy(), "RSA_2048");
    const pub = join(tempDir("keyhaven-kmssecret-"), "pub.der");
    writeFileSync(pub, (await kms.send(new GetPublicKeyCommand({ KeyId: rsa }))).PublicKey!);
    const online = await seal(["--key", key], secretManifest(a, "app", { token: "pa55-moved" }));
    const offline = await seal(
      ["--key", rsa, "--public-key", pub],
      secretManifest(a, "app", { token: "pa55-moved" }),
    );
    // Another namespace, same name and entry.
    await apply({ ...online, metadata: { name: "app", namespace: b } } as KmsSecret);
    const message = await waitFailed(b, "app", "DecryptFailed");
    expect(message).toContain("Entry token");
    expect(argoHealth(await getObject<KmsSecret>(plane, "KmsSecret", b, "app"))).toEqual({
      status: "Degraded",
      message: `DecryptFailed: ${message}`,
    });
    await apply({ ...offline, metadata: { name: "app-offline", namespace: b } } as KmsSecret);
    expect(await waitFailed(b, "app-offline", "DecryptFailed")).toContain("Entry token");
    // The right namespace, another entry.
    const swapped = {
      ...online,
      spec: { ...online.spec, encryptedData: { apiKey: online.spec.encryptedData["token"]! } },
    };
    await apply(swapped);
    expect(await waitFailed(a, "app", "DecryptFailed")).toContain("Entry apiKey");
    expect(await getSecret(b, "app")).toBeUndefined();
    expect(await getSecret(a, "app")).toBeUndefined();
    const events = await eventsOf(plane, b, "app");
    expect(events.some((e) => e.type === "Warning" && e.reason === "DecryptFailed")).toBe(true);
    await expectNothingLeaked(b, "app", ["pa55-moved"]);
  });

  it("rotation + reseal: ReEncrypt onto the new material, the Secret follows a changed encryptedData", async () => {
    const ns = await kmsSecretNamespace("rotate");
    const key = await createKey();
    const obj = await seal(["--key", key], secretManifest(ns, "api", { token: "v1-token" }));
    await apply(obj);
    await waitReady(plane, "KmsSecret", ns, "api");
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: key }));
    const resealed = await reseal(obj);
    const version = (o: KmsSecret) =>
      readCiphertextHeader(Buffer.from(o.spec.encryptedData["token"]!, "base64")).materialVersion;
    expect(version(resealed)).toBeGreaterThan(version(obj));
    await mergeObject(plane, "KmsSecret", ns, "api", {
      spec: { encryptedData: resealed.spec.encryptedData },
    });
    await waitReady(plane, "KmsSecret", ns, "api");
    expect(decoded(await getSecret(ns, "api"))).toEqual({ token: "v1-token" });
    // A new value (seal --merge-into) reaches the Secret.
    const file = join(tempDir("keyhaven-kmssecret-"), "api.yaml");
    writeFileSync(file, stringify(resealed));
    await runSeal(loadConfig(["seal", "--merge-into", file], {}) as SealConfig, {
      stdin: async () => JSON.stringify(secretManifest(ns, "api", { token: "v2-token" })),
      stdout: () => undefined,
      kms,
    });
    const merged = parse(readFileSync(file, "utf8")) as KmsSecret;
    await mergeObject(plane, "KmsSecret", ns, "api", {
      spec: { encryptedData: merged.spec.encryptedData },
    });
    await eventually(
      async () => decoded(await getSecret(ns, "api"))["token"] === "v2-token",
      "the Secret updated",
      30_000,
      100,
    );
  });

  it("deletion policy: Delete deletes the Secret, Retain keeps it without the owner reference", async () => {
    const ns = await kmsSecretNamespace("deletion");
    const key = await createKey();
    const gone = await seal(["--key", key], secretManifest(ns, "gone", { a: "1" }));
    const kept = await seal(["--key", key], secretManifest(ns, "kept", { b: "2" }));
    kept.spec.deletionPolicy = "Retain";
    await apply(gone);
    await apply(kept);
    await waitReady(plane, "KmsSecret", ns, "gone");
    await waitReady(plane, "KmsSecret", ns, "kept");
    for (const name of ["gone", "kept"])
      expect(
        (
          await plane.request(
            "DELETE",
            `/apis/keyhaven.dev/v1alpha1/namespaces/${ns}/kmssecrets/${name}`,
          )
        ).status,
      ).toBe(200);
    await eventually(
      async () =>
        !(await getObject(plane, "KmsSecret", ns, "gone")) &&
        !(await getObject(plane, "KmsSecret", ns, "kept")),
      "both KmsSecrets gone",
      30_000,
      100,
    );
    expect(await getSecret(ns, "gone")).toBeUndefined();
    const retained = await getSecret(ns, "kept");
    expect(decoded(retained)).toEqual({ b: "2" });
    expect(retained?.metadata.ownerReferences ?? []).toEqual([]);
  });

  it("a Secret the KmsSecret does not own is left alone (SecretConflict)", async () => {
    const ns = await kmsSecretNamespace("conflict");
    const key = await createKey();
    await plane.request("POST", `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "mine" },
      stringData: { x: "hand-made" },
    });
    await apply(await seal(["--key", key], secretManifest(ns, "mine", { x: "sealed" })));
    await waitFailed(ns, "mine", "SecretConflict");
    expect(decoded(await getSecret(ns, "mine"))).toEqual({ x: "hand-made" });
  });

  it("a namespace the chart's RBAC does not name: SecretForbidden, no Secret", async () => {
    const ns = await createNamespace(plane, "no-rbac");
    const key = await createKey();
    await apply(await seal(["--key", key], secretManifest(ns, "db", { x: "pa55-no-rbac" })));
    expect(await waitFailed(ns, "db", "SecretForbidden")).toContain("kmsSecretNamespaces");
    expect(await getSecret(ns, "db")).toBeUndefined();
  });

  it("a key policy lets the controller open team-a's values and not team-b's", async () => {
    const teamA = await kmsSecretNamespace("team-a");
    const teamB = await kmsSecretNamespace("team-b");
    const key = await createKey(
      keyPolicy({ StringEquals: { "kms:EncryptionContext:keyhaven.dev/namespace": "team-a" } }),
    );
    await apply(await seal(["--key", key], secretManifest(teamA, "db", { password: "pa55-a" })));
    await apply(await seal(["--key", key], secretManifest(teamB, "db", { password: "pa55-b" })));
    await waitReady(plane, "KmsSecret", teamA, "db");
    expect(decoded(await getSecret(teamA, "db"))).toEqual({ password: "pa55-a" });
    const message = await waitFailed(teamB, "db", "AccessDenied");
    expect(message).toContain("entry password");
    expect(await getSecret(teamB, "db")).toBeUndefined();
    await expectNothingLeaked(teamB, "db", ["pa55-b"]);
  });
});
