/** KmsAlias and KmsGrant reconcilers against the in-memory API server and the real key service. */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  ListAliasesCommand,
  ListGrantsCommand,
  RevokeGrantCommand,
} from "@aws-sdk/client-kms";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import { FINALIZER } from "../src/api/v1alpha1/types.js";
import { harness, kmsAlias, kmsGrant, kmsKey, NS, type Harness } from "./kube/fixtures.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.stop();
});

async function readyKey(name: string): Promise<string> {
  const key = h.create(kmsKey(name));
  await h.keys.reconcile(key);
  return h.key(name).status!.keyId!;
}

const aliasTarget = async (name: string) =>
  (await h.kms.send(new DescribeKeyCommand({ KeyId: name }))).KeyMetadata?.KeyId;

describe("KmsAlias", () => {
  it("creates alias/<namespace>/<name> for a referenced KmsKey", async () => {
    const keyId = await readyKey("orders");
    const a = h.create(kmsAlias("orders.main", { targetKeyRef: { name: "orders" } }));
    await h.aliases.reconcile(a);
    const obj = h.alias("orders.main");
    expect(obj.metadata.finalizers).toContain(FINALIZER);
    expect(obj.status).toMatchObject({ aliasName: `alias/${NS}/orders_main`, targetKeyId: keyId });
    expect(findCondition(obj.status?.conditions, "Ready")?.status).toBe("True");
    expect(await aliasTarget(`alias/${NS}/orders_main`)).toBe(keyId);
  });

  it("waits (condition, slow requeue) while the referenced KmsKey has no key", async () => {
    const a = h.create(kmsAlias("early", { name: "alias/early", targetKeyRef: { name: "later" } }));
    const result = await h.aliases.reconcile(a);
    expect(findCondition(h.alias("early").status?.conditions, "Ready")).toMatchObject({
      status: "False",
      reason: "TargetNotReady",
    });
    expect(result.requeueAfter).toBe(60_000);
  });

  it("retargets when the spec changes, and renames by deleting the old alias", async () => {
    const k1 = await readyKey("k1");
    const k2 = await readyKey("k2");
    const a = h.create(kmsAlias("app", { name: "alias/app", targetKeyId: k1 }));
    await h.aliases.reconcile(a);
    h.api.patch("kmsaliases", NS, "app", "merge", { spec: { targetKeyId: k2 } });
    await h.aliases.reconcile(a);
    expect(await aliasTarget("alias/app")).toBe(k2);
    h.api.patch("kmsaliases", NS, "app", "merge", { spec: { name: "alias/app2" } });
    await h.aliases.reconcile(a);
    expect(await aliasTarget("alias/app2")).toBe(k2);
    await expect(aliasTarget("alias/app")).rejects.toMatchObject({ name: "NotFoundException" });
  });

  it("a name that already points elsewhere is an AliasConflict condition, not an error loop", async () => {
    const mine = await readyKey("mine");
    const other = (await h.kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await h.kms.send(new CreateAliasCommand({ AliasName: "alias/taken", TargetKeyId: other }));
    const a = h.create(kmsAlias("taken", { name: "alias/taken", targetKeyId: mine }));
    const result = await h.aliases.reconcile(a);
    const ready = findCondition(h.alias("taken").status?.conditions, "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "AliasConflict" });
    expect(ready?.message).toContain(other);
    expect(result.requeueAfter).toBe(60_000);
    expect(await aliasTarget("alias/taken")).toBe(other);
    // Deleting the conflicting object leaves the alias it never owned.
    h.api.delete("kmsaliases", NS, "taken");
    await h.aliases.reconcile(a);
    expect(await aliasTarget("alias/taken")).toBe(other);
  });

  it("deleting the object deletes its alias and removes the finalizer", async () => {
    const keyId = await readyKey("k");
    const a = h.create(kmsAlias("bye", { name: "alias/bye", targetKeyId: keyId }));
    await h.aliases.reconcile(a);
    h.api.delete("kmsaliases", NS, "bye");
    await h.aliases.reconcile(a);
    expect(() => h.alias("bye")).toThrow(/not found/);
    const aliases = await h.kms.send(new ListAliasesCommand({}));
    expect(aliases.Aliases?.map((x) => x.AliasName)).not.toContain("alias/bye");
  });
});

describe("KmsGrant", () => {
  const grantsOn = async (keyArn: string) =>
    (await h.kms.send(new ListGrantsCommand({ KeyId: keyArn }))).Grants ?? [];

  it("creates the grant; status has the grant id and never the token", async () => {
    await readyKey("k");
    const arn = h.key("k").status!.arn!;
    const g = h.create(
      kmsGrant("app", {
        keyRef: { name: "k" },
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        operations: ["Decrypt", "Encrypt"],
        constraints: { encryptionContextSubset: { app: "orders" } },
      }),
    );
    await h.grants.reconcile(g);
    const obj = h.grant("app");
    expect(obj.status?.grantId).toMatch(/\S+/);
    expect(findCondition(obj.status?.conditions, "Ready")).toMatchObject({
      status: "True",
      reason: "GrantActive",
    });
    const grants = await grantsOn(arn);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({
      GrantId: obj.status?.grantId,
      GranteePrincipal: "arn:aws:iam::000000000000:role/app",
    });
    expect(grants[0]!.Operations?.sort()).toEqual(["Decrypt", "Encrypt"]);
    const text = JSON.stringify(obj) + JSON.stringify(h.events());
    expect(text).not.toMatch(/token/i);
  });

  it("a spec change creates the new grant and revokes the old one; reconciling again changes nothing", async () => {
    await readyKey("k");
    const arn = h.key("k").status!.arn!;
    const g = h.create(
      kmsGrant("app", {
        keyRef: { name: "k" },
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        operations: ["Decrypt"],
      }),
    );
    await h.grants.reconcile(g);
    const first = h.grant("app").status!.grantId;
    h.api.patch("kmsgrants", NS, "app", "merge", {
      spec: { operations: ["Decrypt", "GenerateDataKey"] },
    });
    await h.grants.reconcile(g);
    const second = h.grant("app").status!.grantId;
    expect(second).not.toBe(first);
    expect((await grantsOn(arn)).map((x) => x.GrantId)).toEqual([second]);
    await h.grants.reconcile(g);
    expect((await grantsOn(arn)).map((x) => x.GrantId)).toEqual([second]);
    expect(h.events("app").map((e) => e.reason)).toEqual(["Created", "Replaced"]);
  });

  it("a grant revoked by hand is recreated (drift) and deleting the object revokes it", async () => {
    await readyKey("k");
    const arn = h.key("k").status!.arn!;
    const g = h.create(
      kmsGrant("app", {
        keyRef: { name: "k" },
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        operations: ["Decrypt"],
      }),
    );
    await h.grants.reconcile(g);
    await h.kms.send(
      new RevokeGrantCommand({ KeyId: arn, GrantId: h.grant("app").status!.grantId! }),
    );
    await h.grants.reconcile(g);
    expect(await grantsOn(arn)).toHaveLength(1);
    expect(h.events("app").at(-1)).toMatchObject({ type: "Warning", reason: "DriftCorrected" });
    h.api.delete("kmsgrants", NS, "app");
    await h.grants.reconcile(g);
    expect(await grantsOn(arn)).toHaveLength(0);
    expect(() => h.grant("app")).toThrow(/not found/);
  });

  it("finds its grant by name after a lost status write instead of granting twice", async () => {
    await readyKey("k");
    const arn = h.key("k").status!.arn!;
    const g = h.create(
      kmsGrant("app", {
        keyRef: { name: "k" },
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        operations: ["Decrypt"],
      }),
    );
    const { KubeApiError } = await import("../src/kube/cluster.js");
    const stop = h.api.inject((r) =>
      r.plural === "kmsgrants" && r.subresource === "status"
        ? new KubeApiError(500, "InternalError", "boom")
        : undefined,
    );
    await expect(h.grants.reconcile(g)).rejects.toThrow();
    stop();
    await h.grants.reconcile(g);
    expect(await grantsOn(arn)).toHaveLength(1);
    expect(h.grant("app").status?.grantId).toBe((await grantsOn(arn))[0]!.GrantId);
  });

  it("schema: exactly one of keyRef/keyId and one of granteePrincipal/serviceAccountRef", () => {
    expect(() =>
      h.create(
        kmsGrant("x", {
          keyId: "k",
          keyRef: { name: "k" },
          granteePrincipal: "arn:aws:iam::000000000000:role/a",
          operations: ["Decrypt"],
        }),
      ),
    ).toThrow(/exactly one of keyRef and keyId/);
    expect(() => h.create(kmsGrant("y", { keyId: "k", operations: ["Decrypt"] }))).toThrow(
      /exactly one of granteePrincipal and serviceAccountRef/,
    );
    expect(() =>
      h.create(
        kmsGrant("z", {
          keyId: "k",
          granteePrincipal: "arn:aws:iam::000000000000:role/a",
          operations: ["Fly" as never],
        }),
      ),
    ).toThrow(/Unsupported value/);
  });
});
