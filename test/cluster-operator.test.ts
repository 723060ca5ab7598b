/**
 * The operator on the real API server: the CRDs from crds/ Established, the real schema
 * and CEL rules refusing what they must (and the in-memory fake refusing the same),
 * `keyhaven controller` (the built program, with the chart's operator RBAC) bringing
 * KmsKey, KmsAlias and KmsGrant to Ready against a real key service, printer columns,
 * spec changes reaching the key service, drift corrected with an Event, and deletion.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { promisify } from "node:util";
import {
  DescribeKeyCommand,
  DisableKeyCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  ListAliasesCommand,
  ListGrantsCommand,
  ListResourceTagsCommand,
  UntagResourceCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KINDS, type KindName, type KmsGrant, type KmsKey } from "../src/api/v1alpha1/types.js";
import { KubeApiError } from "../src/kube/cluster.js";
import { defaultResourceTypes, MemoryApiServer } from "./support/kube/memoryApiServer.js";
import { eventually } from "./kube/drive.js";
import { kmsAlias, kmsGrant, kmsKey, withRotation, withTags } from "./kube/fixtures.js";
import { schemasFromCrds } from "./kube/httpApiServer.js";
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
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, spawnServer, type SpawnedServer } from "./support/server.js";

const run = promisify(execFile);
let plane: ControlPlane;
let service: SpawnedServer;
let kms: KMSClient;
let controller: ControllerProgram;

beforeAll(async () => {
  [plane, service] = await Promise.all([startControlPlane(), spawnServer({ timeoutMs: 60_000 })]);
  kms = kmsClient(service);
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
    kmsEnvironment(service, service.credentials),
  );
}, 120_000);

afterAll(async () => {
  await controller?.kill();
  kms?.destroy();
  await service?.stop();
  await plane?.stop();
});

const describeKey = async (keyId: string) =>
  (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;

describe("schema", () => {
  it("the CRDs are Established and the real schema and CEL rules refuse what the fake refuses", async () => {
    const ns = await createNamespace(plane, "schema");
    const fake = new MemoryApiServer({ types: defaultResourceTypes(schemasFromCrds()) });
    const both = async (obj: Record<string, unknown>) => {
      const real = await createObject(plane, ns, obj);
      let fakeStatus = 201;
      try {
        fake.create(KINDS[obj["kind"] as KindName].plural, ns, obj);
      } catch (err) {
        fakeStatus = (err as KubeApiError).status;
      }
      return { real: real.status, fake: fakeStatus, message: JSON.stringify(real.body) };
    };
    const refused = [
      { ...kmsKey("bad-spec"), spec: { keySpec: "AES_999" } },
      kmsKey("short-rotation", withRotation(30)),
      { ...kmsKey("short-window"), spec: { deletion: { pendingWindowDays: 3 } } },
      { ...kmsKey("bad-policy-enum"), spec: { deletion: { policy: "Orphan" } } },
      kmsAlias("two-targets", { targetKeyRef: { name: "k" }, targetKeyId: "abc" }),
      kmsAlias("reserved", { name: "alias/aws/x", targetKeyId: "abc" }),
      kmsGrant("no-key", {
        granteePrincipal: "arn:aws:iam::000000000000:user/a",
        operations: ["Encrypt"],
      } as never),
      kmsGrant("bad-op", {
        keyId: "abc",
        granteePrincipal: "arn:aws:iam::000000000000:user/a",
        operations: ["Fly"],
      } as never),
    ];
    for (const obj of refused) {
      const r = await both(obj);
      expect(r.real, r.message).toBe(422);
      expect(r.fake, `fake accepted what the API server refused: ${r.message}`).toBe(422);
    }
    expect((await both(kmsKey("good", withRotation(90)))).real).toBe(201);
    // Defaults are the same in both.
    const real = await getObject<KmsKey>(plane, "KmsKey", ns, "good");
    expect(real!.spec).toEqual(fake.get("kmskeys", ns, "good")["spec"]);
    expect(real!.spec).toMatchObject({
      keySpec: "SYMMETRIC_DEFAULT",
      enabled: true,
      origin: "AWS_KMS",
    });

    // Immutable keySpec: CEL `self == oldSelf` on update.
    const change = await mergeObject(plane, "KmsKey", ns, "good", {
      spec: { keySpec: "RSA_2048" },
    });
    expect(change.status).toBe(422);
    expect(JSON.stringify(change.body)).toContain("keySpec is immutable");
    expect(() =>
      fake.patch("kmskeys", ns, "good", "merge", { spec: { keySpec: "RSA_2048" } }),
    ).toThrow(expect.objectContaining({ status: 422 }));
  });
});

describe("resources", () => {
  it("KmsKey, KmsAlias and KmsGrant reach Ready with ids, ARN, state and rotation dates; printer columns show them", async () => {
    const ns = await createNamespace(plane, "ready");
    expect(
      (
        await createObject(
          plane,
          ns,
          kmsKey("orders", withRotation(180), withTags({ team: "shop" })),
        )
      ).status,
    ).toBe(201);
    await createObject(plane, ns, kmsAlias("orders", { targetKeyRef: { name: "orders" } }));
    await createObject(
      plane,
      ns,
      kmsGrant("orders-app", {
        keyRef: { name: "orders" },
        granteePrincipal: "arn:aws:iam::000000000000:user/app",
        operations: ["Encrypt", "Decrypt"],
      }),
    );
    const key = await waitReady<KmsKey>(plane, "KmsKey", ns, "orders");
    const s = key.status!;
    expect(s.keyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.arn).toBe(`arn:aws:kms:us-east-1:000000000000:key/${s.keyId}`);
    expect(s.keyState).toBe("Enabled");
    expect(s.rotationEnabled).toBe(true);
    expect(s.rotationPeriodDays).toBe(180);
    expect(Date.parse(s.nextRotationTime!) - Date.now()).toBeGreaterThan(179 * 86_400_000);
    expect((await describeKey(s.keyId!)).Enabled).toBe(true);

    await waitReady(plane, "KmsAlias", ns, "orders");
    const aliases = await kms.send(new ListAliasesCommand({ KeyId: s.keyId }));
    expect(aliases.Aliases?.map((a) => a.AliasName)).toEqual([`alias/${ns}/orders`]);
    const grant = await waitReady<KmsGrant>(plane, "KmsGrant", ns, "orders-app");
    expect(grant.status?.grantId).toMatch(/\S{16,}/);
    expect(JSON.stringify(grant).toLowerCase()).not.toContain("granttoken");
    const grants = await kms.send(new ListGrantsCommand({ KeyId: s.keyId }));
    expect(grants.Grants?.map((g) => g.GrantId)).toEqual([grant.status?.grantId]);

    // Printer columns, as the API server renders them for kubectl.
    const table = await asTable(`/apis/keyhaven.dev/v1alpha1/namespaces/${ns}/kmskeys`);
    expect(table.columnDefinitions.map((c) => c.name)).toEqual([
      "Name",
      "Key ID",
      "State",
      "Rotation",
      "Next Rotation",
      "Ready",
      "Age",
      "Deletion",
      "Version",
    ]);
    expect(table.rows[0]!.cells.slice(0, 4)).toEqual(["orders", s.keyId, "Enabled", true]);
    expect(table.rows[0]!.cells[4]).toBe(s.nextRotationTime);
    expect(table.rows[0]!.cells[5]).toBe("True");
    if (existsSync("/usr/bin/kubectl")) {
      const { stdout } = await run("/usr/bin/kubectl", [
        "--kubeconfig",
        plane.kubeconfig,
        "get",
        "kmskeys",
        "-n",
        ns,
        "-o",
        "wide",
      ]);
      expect(stdout).toMatch(
        /NAME\s+KEY ID\s+STATE\s+ROTATION\s+NEXT ROTATION\s+READY\s+AGE\s+DELETION\s+VERSION/,
      );
      expect(stdout).toMatch(new RegExp(`orders\\s+${s.keyId}\\s+Enabled\\s+true\\s+\\S+\\s+True`));
    }
  });

  it("spec changes reach the key service: enabled, rotation period and on-demand rotation, policy, tags, alias target, grant operations", async () => {
    const ns = await createNamespace(plane, "changes");
    await createObject(plane, ns, kmsKey("a", withRotation(180), withTags({ team: "shop" })));
    await createObject(plane, ns, kmsKey("b"));
    await createObject(plane, ns, kmsAlias("current", { targetKeyRef: { name: "a" } }));
    await createObject(
      plane,
      ns,
      kmsGrant("app", {
        keyRef: { name: "a" },
        granteePrincipal: "arn:aws:iam::000000000000:user/app",
        operations: ["Encrypt"],
      }),
    );
    const a = (await waitReady<KmsKey>(plane, "KmsKey", ns, "a")).status!.keyId!;
    const b = (await waitReady<KmsKey>(plane, "KmsKey", ns, "b")).status!.keyId!;
    await waitReady(plane, "KmsAlias", ns, "current");
    await waitReady(plane, "KmsGrant", ns, "app");

    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "Root",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::000000000000:root" },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Sid: "Reader",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::000000000000:user/reader" },
          Action: "kms:DescribeKey",
          Resource: "*",
        },
      ],
    });
    // Rotation settings first: the key service (as AWS) refuses them on a Disabled key.
    const patched = await mergeObject(plane, "KmsKey", ns, "a", {
      spec: {
        rotation: { periodDays: 400, rotateOnDemandRequest: "now-1" },
        policy,
        tags: { team: "payments", tier: "gold" },
      },
    });
    expect(patched.status).toBe(200);
    await mergeObject(plane, "KmsAlias", ns, "current", { spec: { targetKeyRef: { name: "b" } } });
    await mergeObject(plane, "KmsGrant", ns, "app", {
      spec: { operations: ["Encrypt", "Decrypt"] },
    });

    const rotated = await waitReady<KmsKey>(plane, "KmsKey", ns, "a");
    expect(rotated.status).toMatchObject({ rotationPeriodDays: 400, currentVersion: 2 });
    expect(Date.now() - Date.parse(rotated.status!.lastRotationTime!)).toBeLessThan(120_000);
    expect(
      (await kms.send(new GetKeyRotationStatusCommand({ KeyId: a }))).RotationPeriodInDays,
    ).toBe(400);
    await mergeObject(plane, "KmsKey", ns, "a", { spec: { enabled: false } });
    const disabled = await waitReady<KmsKey>(plane, "KmsKey", ns, "a");
    expect(disabled.status?.keyState).toBe("Disabled");
    expect((await describeKey(a)).KeyState).toBe("Disabled");
    const stored = JSON.parse((await kms.send(new GetKeyPolicyCommand({ KeyId: a }))).Policy!) as {
      Statement: { Sid: string }[];
    };
    expect(stored.Statement.map((st) => st.Sid)).toEqual(["Root", "Reader"]);
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: a }))).Tags ?? [];
    expect(tags).toEqual(
      expect.arrayContaining([
        { TagKey: "team", TagValue: "payments" },
        { TagKey: "tier", TagValue: "gold" },
      ]),
    );

    await waitReady(plane, "KmsAlias", ns, "current");
    const aliases = await kms.send(new ListAliasesCommand({}));
    expect(aliases.Aliases?.find((x) => x.AliasName === `alias/${ns}/current`)?.TargetKeyId).toBe(
      b,
    );
    const grant = await waitReady<KmsGrant>(plane, "KmsGrant", ns, "app");
    const grants = (await kms.send(new ListGrantsCommand({ KeyId: a }))).Grants ?? [];
    expect(grants.map((g) => [g.GrantId, [...(g.Operations ?? [])].sort()])).toEqual([
      [grant.status!.grantId, ["Decrypt", "Encrypt"]],
    ]);
    const reasons = (await eventsOf(plane, ns, "a")).map((e) => e.reason);
    expect(reasons).toContain("Updated");
  });

  it("drift made through the KMS API is put back and recorded as a Warning Event", async () => {
    const ns = await createNamespace(plane, "drift");
    await createObject(plane, ns, kmsKey("k", withTags({ team: "shop" })));
    const keyId = (await waitReady<KmsKey>(plane, "KmsKey", ns, "k")).status!.keyId!;
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ["team"] }));
    await eventually(
      async () => {
        const md = await describeKey(keyId);
        const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags ?? [];
        return (
          md.Enabled === true && tags.some((t) => t.TagKey === "team" && t.TagValue === "shop")
        );
      },
      "the drift corrected",
      30_000,
      250,
    );
    const drift = await eventually(
      async () => (await eventsOf(plane, ns, "k")).find((e) => e.reason === "DriftCorrected"),
      "a DriftCorrected Event",
      10_000,
      250,
    );
    expect(drift).toMatchObject({ type: "Warning", involvedObject: { kind: "KmsKey", name: "k" } });
  });
});

describe("deletion", () => {
  it("kubectl delete schedules deletion with the pending window; the object stays PendingDeletion with the date; Retain rescues it", async () => {
    const ns = await createNamespace(plane, "delete");
    await createObject(plane, ns, { ...kmsKey("k"), spec: { deletion: { pendingWindowDays: 7 } } });
    const ready = await waitReady<KmsKey>(plane, "KmsKey", ns, "k");
    const keyId = ready.status!.keyId!;
    const deleted = await plane.request(
      "DELETE",
      `/apis/keyhaven.dev/v1alpha1/namespaces/${ns}/kmskeys/k`,
    );
    expect(deleted.status).toBe(200);
    const pending = await eventually(
      async () => {
        const o = await getObject<KmsKey>(plane, "KmsKey", ns, "k");
        return o?.status?.keyState === "PendingDeletion" && o;
      },
      "PendingDeletion in status",
      30_000,
      100,
    );
    expect(pending.metadata.deletionTimestamp).toBeDefined();
    // Marking an object deleted bumps its generation (the fake does the same).
    expect(pending.metadata.generation).toBe(ready.metadata.generation + 1);
    const days = (Date.parse(pending.status!.deletionDate!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7.01);
    const md = await describeKey(keyId);
    expect(md.KeyState).toBe("PendingDeletion");
    expect(md.DeletionDate?.toISOString().slice(0, 16)).toBe(
      pending.status!.deletionDate!.slice(0, 16),
    );
    const table = await asTable(`/apis/keyhaven.dev/v1alpha1/namespaces/${ns}/kmskeys`);
    expect(table.rows[0]!.cells[2]).toBe("PendingDeletion");
    expect(table.rows[0]!.cells[7]).toBe(pending.status!.deletionDate);
    // Still there a while later: the finalizer holds it until the key service deletes the key.
    expect((await getObject(plane, "KmsKey", ns, "k"))?.metadata.finalizers).toContain(
      "keyhaven.dev/cleanup",
    );

    // The rescue of docs/operator.md: Retain while terminating cancels, re-enables, and lets the object go.
    await mergeObject(plane, "KmsKey", ns, "k", { spec: { deletion: { policy: "Retain" } } });
    await eventually(
      async () => (await getObject(plane, "KmsKey", ns, "k")) === undefined,
      "the object gone",
      30_000,
      100,
    );
    expect((await describeKey(keyId)).KeyState).toBe("Enabled");
  });

  it("declarative deletion (spec.deletion.requested) schedules and cancels; the Retain policy leaves the key", async () => {
    const ns = await createNamespace(plane, "cancel");
    await createObject(plane, ns, {
      ...kmsKey("k"),
      spec: { deletion: { pendingWindowDays: 10 } },
    });
    await createObject(plane, ns, { ...kmsKey("kept"), spec: { deletion: { policy: "Retain" } } });
    const keyId = (await waitReady<KmsKey>(plane, "KmsKey", ns, "k")).status!.keyId!;
    const keptId = (await waitReady<KmsKey>(plane, "KmsKey", ns, "kept")).status!.keyId!;

    await mergeObject(plane, "KmsKey", ns, "k", { spec: { deletion: { requested: true } } });
    const scheduled = await eventually(
      async () => {
        const o = await getObject<KmsKey>(plane, "KmsKey", ns, "k");
        return (
          o?.status?.keyState === "PendingDeletion" &&
          o.status.observedGeneration === o.metadata.generation &&
          o
        );
      },
      "PendingDeletion",
      30_000,
      100,
    );
    expect((Date.parse(scheduled.status!.deletionDate!) - Date.now()) / 86_400_000).toBeGreaterThan(
      9.9,
    );
    expect((await describeKey(keyId)).KeyState).toBe("PendingDeletion");
    await mergeObject(plane, "KmsKey", ns, "k", { spec: { deletion: { requested: false } } });
    const back = await waitReady<KmsKey>(plane, "KmsKey", ns, "k");
    expect(back.status?.keyState).toBe("Enabled");
    expect(back.status?.deletionDate).toBeUndefined();
    expect((await describeKey(keyId)).KeyState).toBe("Enabled");

    await plane.request("DELETE", `/apis/keyhaven.dev/v1alpha1/namespaces/${ns}/kmskeys/kept`);
    await eventually(
      async () => (await getObject(plane, "KmsKey", ns, "kept")) === undefined,
      "the Retain object gone",
      30_000,
      100,
    );
    expect((await describeKey(keptId)).KeyState).toBe("Enabled");
  });
});

interface Table {
  columnDefinitions: { name: string }[];
  rows: { cells: unknown[] }[];
}

/** GET as a meta.k8s.io Table: what kubectl prints (printer columns). */
function asTable(path: string): Promise<Table> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, plane.url),
      {
        ca: readFileSync(plane.caFile),
        headers: {
          authorization: `Bearer ${plane.adminToken}`,
          accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(JSON.parse(text) as Table));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
