import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { contractKey, contractMaterial } from "../../../test/support/keyStoreContract.js";
import { copyStore, CopyStoreError } from "./copyStore.js";
import type { KeyStore } from "./keyStore.js";
import { SqliteKeyStore } from "./sqliteKeyStore.js";

const open: KeyStore[] = [];
const store = () => {
  const s = new SqliteKeyStore(join(mkdtempSync(join(tmpdir(), "keyhaven-copy-")), "k.db"));
  open.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** Everything a store holds that copyStore copies, for comparing two stores. */
async function contents(s: KeyStore) {
  const keys = (await s.listKeys(1000)).items;
  return {
    meta: await s.getMeta("rootKeyId"),
    keys,
    materials: await Promise.all(
      keys.map(async (k) => (await s.listMaterials(k.keyId, 100)).items),
    ),
    grants: await Promise.all(keys.map((k) => s.grantsOf(k.keyId))),
    aliases: (await s.listAliases(1000)).items,
  };
}

async function filled(): Promise<KeyStore> {
  const s = store();
  await s.setMeta("rootKeyId", "local:abc");
  for (let i = 0; i < 5; i++) {
    const k = contractKey({ description: `k${i}` });
    await s.createKey(k, contractMaterial(k));
    await s.addMaterial(contractMaterial(k, 2));
    await s.createAlias({ name: `alias/k${i}`, targetKeyId: k.keyId, createdAt: i, updatedAt: i });
    await s.createGrant({
      grantId: `${i}`.padStart(64, "a"),
      keyId: k.keyId,
      granteePrincipal: "arn:aws:iam::000000000000:role/g",
      issuingAccount: "arn:aws:iam::000000000000:root",
      operations: ["Decrypt"],
      createdAt: i,
    });
  }
  return s;
}

describe("copyStore", () => {
  it("copies keys, every material version, aliases, grants and meta; a second run writes nothing", async () => {
    const from = await filled();
    const to = store();
    const lines: number[] = [];
    const first = await copyStore(from, to, (p) => lines.push(p.keys));
    expect(first).toMatchObject({ keys: 5, totalKeys: 5 });
    expect(lines.at(-1)).toBe(5);
    expect(await contents(to)).toEqual(await contents(from));
    expect((await copyStore(from, to)).written).toBe(0);
  });

  it("finishes an interrupted run", async () => {
    const from = await filled();
    const to = store();
    await expect(
      copyStore(from, to, (p) => {
        if (p.keys === 2) throw new Error("killed");
      }),
    ).rejects.toThrow("killed");
    expect((await to.listKeys(100)).items).toHaveLength(2);
    await copyStore(from, to);
    expect(await contents(to)).toEqual(await contents(from));
  });

  it("refuses a target under another root key", async () => {
    const from = await filled();
    const to = store();
    await to.setMeta("rootKeyId", "local:other");
    await expect(copyStore(from, to)).rejects.toBeInstanceOf(CopyStoreError);
  });
});
