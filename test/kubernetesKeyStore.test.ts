/**
 * The Kubernetes key store (src/kubestore/) on the real API server: the KeyStore contract
 * (one namespace per test, each store its own client, cache and watch), then what only
 * this backend has: the watch feeding a second replica's cache, a relist after 410 Gone,
 * and repair of what a replica killed half-way through a key deletion leaves.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { SqliteKeyStore } from "../src/kms/store/sqliteKeyStore.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { storeSecrets } from "../src/kube/storeSecrets.js";
import { KubernetesKeyStore } from "../src/kubestore/kubernetesKeyStore.js";
import { eventually } from "./kube/drive.js";
import {
  contractKey,
  contractMaterial,
  describeKeyStoreContract,
} from "./support/keyStoreContract.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { MAIN_JS, tempDir } from "./support/server.js";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await startControlPlane();
}, 120_000);
afterAll(async () => {
  await plane?.stop();
});

const namespace = () => createNamespace(plane, `store-${randomBytes(4).toString("hex")}`);
const openStore = (ns: string) =>
  KubernetesKeyStore.open(storeSecrets(loadKubeConfig(plane.kubeconfig), ns), {});

describeKeyStoreContract("kubernetes", {
  async fresh() {
    const ns = await namespace();
    return () => openStore(ns);
  },
  concurrentUpdates: 40,
});

describe("KubernetesKeyStore", () => {
  it("a second replica's cache follows the first's writes through the watch", async () => {
    const ns = await namespace();
    const a = await openStore(ns);
    const b = await openStore(ns);
    try {
      const k = contractKey();
      await a.createKey(k, contractMaterial(k));
      const keysOfB = async () => (await b.listKeys(10)).items;
      await eventually(async () => (await keysOfB()).length === 1, "the key in b's cache");
      expect(await keysOfB()).toEqual([k]);
      await a.updateKey(k.keyId, (c) => ({ ...c, state: "Disabled" }));
      await eventually(async () => (await keysOfB())[0]?.state === "Disabled", "Disabled in b");
      await a.deleteKey(k.keyId);
      await eventually(async () => (await keysOfB()).length === 0, "the deletion in b's cache");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("removes the aliases and grants a deletion killed half-way left behind", async () => {
    const ns = await namespace();
    const s = await openStore(ns);
    try {
      const k = contractKey();
      await s.createKey(k, contractMaterial(k));
      await s.createAlias({
        name: "alias/orphan",
        targetKeyId: k.keyId,
        createdAt: 1,
        updatedAt: 1,
      });
      // The key object goes and nothing else, as if its replica died right after.
      const res = await plane.request(
        "DELETE",
        `/api/v1/namespaces/${ns}/secrets/store-key-${k.keyId}`,
      );
      expect(res.status).toBe(200);
      await eventually(async () => (await s.listKeys(10)).items.length === 0, "the deletion seen");
      expect(await s.repairOrphans()).toBe(1);
      expect(await s.getAlias("alias/orphan")).toBeUndefined();
      expect(await s.repairOrphans()).toBe(0);
    } finally {
      await s.close();
    }
  });

  it("keyhaven migrate-store copies sqlite into kubernetes and back, with progress", async () => {
    const ns = await namespace();
    const dir = tempDir("keyhaven-migrate-");
    const source = new SqliteKeyStore(join(dir, "source.db"));
    await source.setMeta("rootKeyId", "local:test");
    const keys = Array.from({ length: 4 }, () => contractKey());
    for (const k of keys) {
      await source.createKey(k, contractMaterial(k));
      await source.addMaterial(contractMaterial(k, 2));
    }
    await source.createAlias({
      name: "alias/moved",
      targetKeyId: keys[0]!.keyId,
      createdAt: 1,
      updatedAt: 1,
    });
    await source.close();
    const migrate = (from: string, to: string) =>
      promisify(execFile)(process.execPath, [
        MAIN_JS,
        "migrate-store",
        "--from",
        from,
        "--to",
        to,
        "--kubeconfig",
        plane.kubeconfig,
      ]);
    const there = await migrate(`sqlite:${join(dir, "source.db")}`, `kubernetes:${ns}`);
    expect(there.stdout).toContain("4/4 keys");
    const back = await migrate(`kubernetes:${ns}`, `sqlite:${join(dir, "back.db")}`);
    expect(back.stdout).toContain("done: 4 keys");
    const copy = new SqliteKeyStore(join(dir, "back.db"));
    try {
      expect((await copy.listKeys(10)).items).toEqual(keys);
      for (const k of keys)
        expect((await copy.getMaterial(k.keyId, 2))?.wrapped).toEqual(
          contractMaterial(k, 2).wrapped,
        );
      expect((await copy.getAlias("alias/moved"))?.targetKeyId).toBe(keys[0]!.keyId);
      expect(await copy.getMeta("rootKeyId")).toBe("local:test");
    } finally {
      await copy.close();
    }
  });
});
