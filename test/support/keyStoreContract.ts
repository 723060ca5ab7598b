/**
 * The KeyStore contract (src/kms/store/keyStore.ts) as one suite every backend runs:
 * src/kms/store/sqliteKeyStore.test.ts (a file) and test/kubernetesKeyStore.test.ts (a
 * namespace on the real API server). `fresh()` gives an empty store space (a new file, a
 * new namespace); the function it returns opens one more store on that space, so a test
 * can have two writers on the same state.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { KeyMaterialRecord, KeyRecord } from "../../src/kms/keys/keyRecord.js";
import {
  StoreConflictError,
  type GrantRecord,
  type KeyStore,
} from "../../src/kms/store/keyStore.js";
import { symmetricKeyRecord } from "./keyRecords.js";

export interface KeyStoreBackend {
  /** A new, empty space; call the result to open a store on it (as often as needed). */
  fresh(): Promise<() => Promise<KeyStore>>;
  /** How many concurrent read-modify-writes of one key the no-lost-update test makes (200). */
  readonly concurrentUpdates?: number;
}

let n = 0;
export function contractKey(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const keyId = `00000000-0000-4000-8000-${(n++).toString(16).padStart(12, "0")}`;
  return symmetricKeyRecord({ keyId, createdAt: 1_700_000_000_000, ...overrides });
}
export const contractMaterial = (k: KeyRecord, version = 1): KeyMaterialRecord => ({
  keyId: k.keyId,
  version,
  createdAt: 1_700_000_000_000 + version,
  wrapped: Buffer.from(`wrapped-${k.keyId}-${version}`),
});
const grant = (k: KeyRecord, i: number, extra: Partial<GrantRecord> = {}): GrantRecord => ({
  grantId: `${k.keyId.replace(/-/g, "").slice(-12)}${String(i).padStart(52, "0")}`,
  keyId: k.keyId,
  granteePrincipal: `arn:aws:iam::000000000000:role/g${i % 2}`,
  issuingAccount: "arn:aws:iam::000000000000:root",
  operations: ["Encrypt"],
  createdAt: i,
  ...extra,
});

export function describeKeyStoreContract(name: string, backend: KeyStoreBackend): void {
  describe(`KeyStore contract: ${name}`, () => {
    const open: KeyStore[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });
    async function space(): Promise<() => Promise<KeyStore>> {
      const opener = await backend.fresh();
      return async () => {
        const s = await opener();
        open.push(s);
        return s;
      };
    }
    const store = async () => (await space())();

    it("creates and reads keys and material; refuses a duplicate id", async () => {
      const s = await store();
      const k = contractKey({ description: "d", tags: [{ TagKey: "a", TagValue: "b" }] });
      await s.createKey(k, contractMaterial(k));
      expect(await s.getKey(k.keyId)).toEqual(k);
      expect(await s.getMaterial(k.keyId, 1)).toMatchObject({
        keyId: k.keyId,
        version: 1,
        wrapped: Buffer.from(`wrapped-${k.keyId}-1`),
      });
      expect(await s.getMaterial(k.keyId, 2)).toBeUndefined();
      expect(await s.getKey("nope")).toBeUndefined();
      await expect(s.createKey(k, contractMaterial(k))).rejects.toBeInstanceOf(StoreConflictError);
      await s.addMaterial(contractMaterial(k, 2));
      await expect(s.addMaterial(contractMaterial(k, 2))).rejects.toBeInstanceOf(
        StoreConflictError,
      );
      expect((await s.listMaterials(k.keyId, 1)).next).toBe("1");
      expect((await s.listMaterials(k.keyId, 5, 1)).items.map((m) => m.version)).toEqual([2]);
    });

    it("lists keys in id order, page by page, each exactly once; counts them", async () => {
      const s = await store();
      const keys = Array.from({ length: 7 }, () => contractKey());
      for (const k of [...keys].reverse()) await s.createKey(k, contractMaterial(k));
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await s.listKeys(3, after);
        pages++;
        seen.push(...page.items.map((k) => k.keyId));
        after = page.next;
      } while (after !== undefined);
      expect(seen).toEqual(keys.map((k) => k.keyId).sort());
      expect(pages).toBe(3);
      const exact = await s.listKeys(7);
      expect(exact.items).toHaveLength(7);
      expect(exact.next).toBeUndefined();
      expect(await s.countKeys()).toEqual([
        { state: "Enabled", keySpec: "SYMMETRIC_DEFAULT", count: 7 },
      ]);
    });

    it("updates atomically: a throwing mutator writes nothing; a missing key gives undefined", async () => {
      const s = await store();
      const k = contractKey();
      await s.createKey(k, contractMaterial(k));
      const updated = await s.updateKey(k.keyId, (c) => ({ ...c, description: "new" }));
      expect(updated?.description).toBe("new");
      await expect(
        s.updateKey(k.keyId, () => {
          throw new Error("refused");
        }),
      ).rejects.toThrow("refused");
      expect((await s.getKey(k.keyId))?.description).toBe("new");
      expect(await s.updateKey("missing", (c) => c)).toBeUndefined();
    });

    it("loses no update when two store instances on one space write concurrently", async () => {
      const opener = await space();
      const a = await opener();
      const b = await opener();
      const k = contractKey({ description: "0" });
      await a.createKey(k, contractMaterial(k));
      const increment = (s: KeyStore) =>
        s.updateKey(k.keyId, (c) => ({ ...c, description: String(Number(c.description) + 1) }));
      const count = backend.concurrentUpdates ?? 200;
      await Promise.all(Array.from({ length: count }, (_, i) => increment(i % 2 ? a : b)));
      expect((await a.updateKey(k.keyId, (c) => c))?.description).toBe(String(count));
      expect((await b.updateKey(k.keyId, (c) => c))?.description).toBe(String(count));
    });

    it("rotates, re-imports and removes material in one write with the key", async () => {
      const s = await store();
      const k = contractKey();
      await s.createKey(k, contractMaterial(k));
      const v2 = { ...contractMaterial(k, 2), materialId: "m2" };
      const rotated = await s.updateKeyWithMaterial(k.keyId, v2, (c) => ({
        ...c,
        currentMaterialVersion: 2,
      }));
      expect(rotated?.currentMaterialVersion).toBe(2);
      // The same material id may be written again (a re-import); another may not.
      await s.updateKeyWithMaterial(k.keyId, { ...v2, wrapped: Buffer.from("again") }, (c) => c);
      expect((await s.getMaterial(k.keyId, 2))?.wrapped).toEqual(Buffer.from("again"));
      await expect(
        s.updateKeyWithMaterial(k.keyId, { ...v2, materialId: "other" }, (c) => c),
      ).rejects.toBeInstanceOf(StoreConflictError);
      await expect(
        s.updateKeyWithMaterial(k.keyId, contractMaterial(k, 3), () => {
          throw new StoreConflictError("no");
        }),
      ).rejects.toBeInstanceOf(StoreConflictError);
      expect(await s.getMaterial(k.keyId, 3)).toBeUndefined();
      expect(
        await s.replaceWrappedMaterial(k.keyId, 1, Buffer.from("wrong"), Buffer.from("x")),
      ).toBe(false);
      expect(
        await s.replaceWrappedMaterial(
          k.keyId,
          1,
          Buffer.from(`wrapped-${k.keyId}-1`),
          Buffer.from("rewrapped"),
        ),
      ).toBe(true);
      expect((await s.getMaterial(k.keyId, 1))?.wrapped).toEqual(Buffer.from("rewrapped"));
      const removed = await s.updateKeyRemovingMaterial(k.keyId, (c) => ({
        ...c,
        state: "PendingImport",
      }));
      expect(removed?.state).toBe("PendingImport");
      expect((await s.listMaterials(k.keyId, 10)).items).toEqual([]);
    });

    it("finds due keys earliest first and tells watchers of new due dates", async () => {
      const s = await store();
      const dates: number[] = [];
      const unwatch = s.watchDueDates((d) => dates.push(d));
      const late = contractKey({ state: "PendingDeletion", deletionDate: 5000 });
      const early = contractKey({ rotationEnabled: true, nextRotationAt: 2000 });
      const none = contractKey();
      for (const k of [late, early, none]) await s.createKey(k, contractMaterial(k));
      expect(await s.nextDueAt()).toBe(2000);
      expect((await s.keysDue(5000, 10)).map((k) => k.keyId)).toEqual([early.keyId, late.keyId]);
      expect((await s.keysDue(3000, 10)).map((k) => k.keyId)).toEqual([early.keyId]);
      await s.updateKey(none.keyId, (c) => ({
        ...c,
        state: "PendingDeletion",
        deletionDate: 1000,
      }));
      expect(dates).toContain(1000);
      unwatch();
    });

    it("keeps import parameters until they expire", async () => {
      const s = await store();
      const k = contractKey({ origin: "EXTERNAL", state: "PendingImport" });
      await s.createKey(k);
      const p = {
        tokenId: "0123456789abcdef0123456789abcdef",
        keyId: k.keyId,
        wrappingAlgorithm: "RSAES_OAEP_SHA_256",
        wrappingKeySpec: "RSA_2048",
        createdAt: 1,
        expiresAt: 100,
        wrappedPrivateKey: Buffer.from("private"),
      };
      await s.putImportParameters(p);
      expect(await s.getImportParameters(p.tokenId)).toEqual(p);
      const later = { ...p, tokenId: "f".repeat(32), expiresAt: 200 };
      await s.putImportParameters(later);
      expect(await s.importParametersOf(k.keyId)).toEqual([p, later]);
      expect(await s.importParametersOf(contractKey().keyId)).toEqual([]);
      expect(await s.deleteExpiredImportParameters(99)).toBe(0);
      expect(await s.deleteExpiredImportParameters(100)).toBe(1);
      expect(await s.getImportParameters(p.tokenId)).toBeUndefined();
      expect(await s.importParametersOf(k.keyId)).toEqual([later]);
    });

    it("keeps alias names unique and reports missing ones", async () => {
      const s = await store();
      const k1 = contractKey();
      const k2 = contractKey();
      await s.createKey(k1, contractMaterial(k1));
      await s.createKey(k2, contractMaterial(k2));
      const alias = { name: "alias/a", targetKeyId: k1.keyId, createdAt: 1, updatedAt: 1 };
      await s.createAlias(alias);
      await expect(s.createAlias({ ...alias, targetKeyId: k2.keyId })).rejects.toBeInstanceOf(
        StoreConflictError,
      );
      expect(await s.getAlias("alias/a")).toEqual(alias);
      expect(await s.updateAlias("alias/a", k2.keyId, 5)).toBe(true);
      expect(await s.getAlias("alias/a")).toEqual({
        ...alias,
        targetKeyId: k2.keyId,
        updatedAt: 5,
      });
      expect(await s.updateAlias("alias/none", k2.keyId, 5)).toBe(false);
      expect(await s.deleteAlias("alias/a")).toBe(true);
      expect(await s.deleteAlias("alias/a")).toBe(false);
      expect(await s.getAlias("alias/a")).toBeUndefined();
    });

    it("refuses an alias to a key that does not exist", async () => {
      const s = await store();
      await expect(
        s.createAlias({ name: "alias/x", targetKeyId: "ghost", createdAt: 1, updatedAt: 1 }),
      ).rejects.toThrow();
      expect(await s.getAlias("alias/x")).toBeUndefined();
    });

    it("lists aliases in name order, paged, optionally for one key", async () => {
      const s = await store();
      const k1 = contractKey();
      const k2 = contractKey();
      await s.createKey(k1, contractMaterial(k1));
      await s.createKey(k2, contractMaterial(k2));
      for (const [name, target] of [
        ["alias/d", k1],
        ["alias/b", k2],
        ["alias/a", k1],
        ["alias/c", k1],
      ] as const)
        await s.createAlias({ name, targetKeyId: target.keyId, createdAt: 1, updatedAt: 1 });
      const first = await s.listAliases(2);
      expect(first.items.map((a) => a.name)).toEqual(["alias/a", "alias/b"]);
      const second = await s.listAliases(2, first.next);
      expect(second.items.map((a) => a.name)).toEqual(["alias/c", "alias/d"]);
      expect(second.next).toBeUndefined();
      const ofK1 = await s.listAliases(2, undefined, k1.keyId);
      expect(ofK1.items.map((a) => a.name)).toEqual(["alias/a", "alias/c"]);
      const ofK1Rest = await s.listAliases(2, ofK1.next, k1.keyId);
      expect(ofK1Rest.items.map((a) => a.name)).toEqual(["alias/d"]);
      expect((await s.aliasesOf(k2.keyId)).map((a) => a.name)).toEqual(["alias/b"]);
    });

    it("creates, lists, pages and deletes grants", async () => {
      const s = await store();
      const k = contractKey();
      await s.createKey(k, contractMaterial(k));
      const grants = [0, 1, 2].map((i) =>
        grant(k, i, i === 1 ? { retiringPrincipal: "arn:aws:iam::000000000000:role/r" } : {}),
      );
      for (const g of grants) await s.createGrant(g);
      await expect(s.createGrant(grants[0]!)).rejects.toBeInstanceOf(StoreConflictError);
      expect(await s.getGrant(grants[2]!.grantId)).toEqual(grants[2]);
      expect((await s.grantsOf(k.keyId)).map((g) => g.grantId)).toEqual(
        grants.map((g) => g.grantId),
      );
      const first = await s.listGrants(k.keyId, 2);
      expect(first.items).toHaveLength(2);
      expect((await s.listGrants(k.keyId, 2, first.next)).items).toEqual([grants[2]]);
      expect(
        (await s.listGrants(k.keyId, 10, undefined, grants[1]!.granteePrincipal)).items,
      ).toEqual([grants[1]]);
      expect((await s.listRetirableGrants("arn:aws:iam::000000000000:role/r", 10)).items).toEqual([
        grants[1],
      ]);
      expect(await s.deleteGrant(grants[0]!.grantId)).toBe(true);
      expect(await s.deleteGrant(grants[0]!.grantId)).toBe(false);
      expect(await s.getGrant(grants[0]!.grantId)).toBeUndefined();
      expect(await s.grantsOf(k.keyId)).toHaveLength(2);
    });

    it("deletes a key with its material, aliases and grants", async () => {
      const s = await store();
      const k = contractKey();
      const other = contractKey();
      await s.createKey(k, contractMaterial(k));
      await s.createKey(other, contractMaterial(other));
      await s.addMaterial(contractMaterial(k, 2));
      await s.createAlias({ name: "alias/gone", targetKeyId: k.keyId, createdAt: 1, updatedAt: 1 });
      await s.createAlias({
        name: "alias/kept",
        targetKeyId: other.keyId,
        createdAt: 1,
        updatedAt: 1,
      });
      await s.createGrant(grant(k, 7));
      await s.createGrant(grant(other, 8));
      expect(await s.deleteKey(k.keyId)).toBe(true);
      expect(await s.deleteKey(k.keyId)).toBe(false);
      expect(await s.getKey(k.keyId)).toBeUndefined();
      expect(await s.getMaterial(k.keyId, 1)).toBeUndefined();
      expect(await s.getMaterial(k.keyId, 2)).toBeUndefined();
      expect(await s.getAlias("alias/gone")).toBeUndefined();
      expect(await s.getAlias("alias/kept")).toBeDefined();
      expect(await s.getGrant(grant(k, 7).grantId)).toBeUndefined();
      expect(await s.grantsOf(k.keyId)).toEqual([]);
      expect(await s.getGrant(grant(other, 8).grantId)).toBeDefined();
      expect(await s.getMaterial(other.keyId, 1)).toBeDefined();
    });

    it("stores meta values and overwrites them", async () => {
      const s = await store();
      expect(await s.getMeta("rootKeyId")).toBeUndefined();
      await s.setMeta("rootKeyId", "local:1");
      await s.setMeta("rootKeyId", "local:2");
      await s.setMeta("other", "x");
      expect(await s.getMeta("rootKeyId")).toBe("local:2");
      expect(await s.getMeta("other")).toBe("x");
    });

    it("initialises a meta value once: concurrent writers on one space agree on the first", async () => {
      const opener = await space();
      const a = await opener();
      const b = await opener();
      const won = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).initMeta("stsSessionKey", `v${i}`)),
      );
      expect(new Set(won).size).toBe(1);
      expect(await a.initMeta("stsSessionKey", "later")).toBe(won[0]);
      expect(await b.getMeta("stsSessionKey")).toBe(won[0]);
    });

    it("shows a second store a key, alias and grant the first just wrote (a miss reads through)", async () => {
      const opener = await space();
      const a = await opener();
      const b = await opener();
      const k = contractKey();
      await a.createKey(k, contractMaterial(k));
      await a.createAlias({
        name: "alias/fresh",
        targetKeyId: k.keyId,
        createdAt: 1,
        updatedAt: 1,
      });
      await a.createGrant(grant(k, 3));
      expect(await b.getKey(k.keyId)).toEqual(k);
      expect((await b.getMaterial(k.keyId, 1))?.wrapped).toEqual(contractMaterial(k).wrapped);
      expect((await b.getAlias("alias/fresh"))?.targetKeyId).toBe(k.keyId);
      expect(await b.getGrant(grant(k, 3).grantId)).toEqual(grant(k, 3));
    });
  });
}
