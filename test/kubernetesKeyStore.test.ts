/**
 * The Kubernetes key store (src/kubestore/) on the real API server: the KeyStore contract
 * (one namespace per test, each store its own client, cache and watch), then what only
 * this backend has: the watch feeding a second replica's cache, a relist after 410 Gone
 * (a watch resumed from a revision etcd has compacted, on an API server of its own without
 * the watch cache), and repair of what a replica killed half-way through a key deletion
 * leaves.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { SqliteKeyStore } from "../src/kms/store/sqliteKeyStore.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { storeSecrets } from "../src/kube/storeSecrets.js";
import { ABSENT_KEY_TTL_MS, KubernetesKeyStore } from "../src/kubestore/kubernetesKeyStore.js";
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

  it("relists after 410 Gone and then holds every write made while its watch was cut", async () => {
    // Without the watch cache the API server watches etcd itself, so a watch resumed from a
    // compacted revision gets 410 Gone (with the cache, its own window decides).
    const own = await startControlPlane({ apiserverArgs: "--watch-cache=false" });
    const cut = await cuttableProxy(new URL(own.url));
    try {
      const ns = await createNamespace(own, "store-gone");
      const viaProxy = join(own.dir, "kubeconfig-proxy");
      writeFileSync(viaProxy, readFileSync(own.kubeconfig, "utf8").replaceAll(own.url, cut.url));
      const secretsA = storeSecrets(loadKubeConfig(viaProxy), ns, {
        informer: { initialBackoffMs: 100, maxBackoffMs: 500 },
      });
      const a = await KubernetesKeyStore.open(secretsA);
      const b = await KubernetesKeyStore.open(storeSecrets(loadKubeConfig(own.kubeconfig), ns));
      try {
        const [k1, k2] = [contractKey(), contractKey()];
        await b.createKey(k1, contractMaterial(k1));
        const alias = { name: "alias/before", targetKeyId: k1.keyId, createdAt: 1, updatedAt: 1 };
        await b.createAlias(alias);
        await eventually(async () => (await a.getAlias("alias/before")) !== undefined, "a sees");
        // getAlias may have read through on a miss: wait for the watch to bring k1 as well
        // (listKeys reads the cache only).
        await eventually(async () => (await a.listKeys(10)).items.length === 1, "a's cache has k1");
        expect(secretsA.informer.stats.relistsAfterGone).toBe(0);

        cut.cut(true); // a's watch drops and cannot come back
        await b.updateKey(k1.keyId, (c) => ({ ...c, state: "Disabled" }));
        await b.createKey(k2, contractMaterial(k2));
        await b.deleteAlias("alias/before");
        await b.createAlias({ ...alias, name: "alias/during", targetKeyId: k2.keyId });
        await compactEtcd(own);
        // a's cache (no reads through: every read below is of cached objects) is stale.
        expect((await a.listKeys(10)).items.map((k) => k.keyId)).toEqual([k1.keyId]);

        cut.cut(false);
        await eventually(
          () => secretsA.informer.stats.relistsAfterGone > 0,
          "410 Gone on the resumed watch",
          30_000,
          50,
        );
        const ids = async () => (await a.listKeys(10)).items.map((k) => k.keyId).sort();
        await eventually(async () => (await ids()).length === 2, "the relist", 30_000, 50);
        expect(await ids()).toEqual([k1.keyId, k2.keyId].sort());
        expect((await a.getKey(k1.keyId))?.state).toBe("Disabled");
        expect((await a.listAliases(10)).items.map((x) => [x.name, x.targetKeyId])).toEqual([
          ["alias/during", k2.keyId],
        ]);
        // And the watch runs again after the relist: a later write arrives without a read.
        await b.updateKey(k2.keyId, (c) => ({ ...c, description: "after" }));
        await eventually(
          async () => (await a.listKeys(10)).items.some((k) => k.description === "after"),
          "a write after the relist",
        );
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      cut.close();
      await own.stop();
    }
  }, 120_000);

  it("remembers an unknown key id for at most ABSENT_KEY_TTL_MS; the watch brings a key made meanwhile at once, and writes never trust the memory", async () => {
    const ns = await namespace();
    const secrets = storeSecrets(loadKubeConfig(plane.kubeconfig), ns);
    let gets = 0;
    const a = await KubernetesKeyStore.open({
      ...secrets,
      get: (name) => (gets++, secrets.get(name)),
    });
    const b = await openStore(ns);
    try {
      const [k, k2, k3] = [contractKey(), contractKey(), contractKey()];
      expect(await a.getKey(k.keyId)).toBeUndefined();
      expect(gets).toBe(1);
      for (let i = 0; i < 5; i++) expect(await a.getMaterial(k.keyId, 1)).toBeUndefined();
      expect(gets).toBe(1); // answered from memory
      // Made on another replica under that id: the watch clears the memory.
      await b.createKey(k, contractMaterial(k));
      await eventually(async () => (await a.getKey(k.keyId)) !== undefined, "the watch", 5_000);
      // After the TTL, a miss asks the API server again.
      expect(await a.getKey(k2.keyId)).toBeUndefined();
      const before = gets;
      await new Promise((r) => setTimeout(r, ABSENT_KEY_TTL_MS + 50));
      expect(await a.getKey(k2.keyId)).toBeUndefined();
      expect(gets).toBe(before + 1);
      // A write reads through whatever the memory says.
      expect(await a.getKey(k3.keyId)).toBeUndefined();
      await b.createKey(k3, contractMaterial(k3));
      const updated = await a.updateKey(k3.keyId, (c) => ({ ...c, description: "written" }));
      expect(updated?.description).toBe("written");
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

  it("keyhaven migrate-store copies sqlite into kubernetes and back (import parameters too), with progress", async () => {
    const ns = await namespace();
    const dir = tempDir("keyhaven-migrate-");
    const source = new SqliteKeyStore(join(dir, "source.db"));
    await source.setMeta("rootKeyId", "local:test");
    const keys = Array.from({ length: 4 }, () => contractKey());
    for (const k of keys) {
      await source.createKey(k, contractMaterial(k));
      await source.addMaterial(contractMaterial(k, 2));
    }
    const pending = contractKey({ origin: "EXTERNAL", state: "PendingImport" });
    await source.createKey(pending);
    const importParameters = {
      tokenId: randomBytes(16).toString("hex"),
      keyId: pending.keyId,
      wrappingAlgorithm: "RSAES_OAEP_SHA_256",
      wrappingKeySpec: "RSA_2048",
      createdAt: 1,
      expiresAt: 86_400_001,
      wrappedPrivateKey: randomBytes(1300),
    };
    await source.putImportParameters(importParameters);
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
    expect(there.stdout).toContain("5/5 keys");
    const inKube = await openStore(ns);
    try {
      expect(await inKube.getImportParameters(importParameters.tokenId)).toEqual(importParameters);
    } finally {
      await inKube.close();
    }
    const back = await migrate(`kubernetes:${ns}`, `sqlite:${join(dir, "back.db")}`);
    expect(back.stdout).toContain("done: 5 keys");
    const copy = new SqliteKeyStore(join(dir, "back.db"));
    try {
      expect((await copy.listKeys(10)).items).toEqual(
        [...keys, pending].sort((x, y) => (x.keyId < y.keyId ? -1 : 1)),
      );
      for (const k of keys)
        expect((await copy.getMaterial(k.keyId, 2))?.wrapped).toEqual(
          contractMaterial(k, 2).wrapped,
        );
      expect((await copy.getAlias("alias/moved"))?.targetKeyId).toBe(keys[0]!.keyId);
      expect(await copy.getMeta("rootKeyId")).toBe("local:test");
      expect(await copy.importParametersOf(pending.keyId)).toEqual([importParameters]);
    } finally {
      await copy.close();
    }
  });
});

/** A TCP proxy to the API server whose connections can be cut (and refused) at will. */
async function cuttableProxy(target: URL) {
  let refusing = false;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.once("close", () => open.delete(s));
      s.once("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    cut(on: boolean) {
      refusing = on;
      if (on) for (const s of open) s.destroy();
    },
    close() {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}

/** Compacts kube-up's etcd (its v3 JSON gateway) up to the current revision. */
async function compactEtcd(plane: ControlPlane) {
  const etcdPid = readFileSync(join(plane.dir, "pids"), "utf8").split("\n")[0]!.trim();
  const argv = readFileSync(`/proc/${etcdPid}/cmdline`, "utf8").split("\0");
  const endpoint = argv[argv.indexOf("--listen-client-urls") + 1]!;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${endpoint}${path}`, { method: "POST", body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return (await res.json()) as { header: { revision: string } };
  };
  const { revision } = (await post("/v3/kv/range", { key: Buffer.from("/").toString("base64") }))
    .header;
  await post("/v3/kv/compaction", { revision, physical: true });
}
