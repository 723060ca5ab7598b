/**
 * Copies one KeyStore into another (`keyhaven migrate-store`): the named values, then every
 * key with all its material versions (wrapped bytes as they are: both stores stay under
 * the same root key), then aliases and grants. Each step skips what the target already
 * has, so a run that stopped anywhere is finished by running it again. Import parameters
 * (GetParametersForImport's wrapping key, wrapped under the root key) move as they are, so
 * an import token handed out before the move still imports afterwards.
 */
import type { KeyStore } from "./keyStore.js";
import { StoreConflictError } from "./keyStore.js";

/** The named values a store keeps (see getMeta's callers). */
export const COPIED_META = ["rootKeyId", "stsSessionKey"] as const;
const PAGE = 500;

export interface CopyProgress {
  readonly keys: number;
  readonly totalKeys: number;
  /** Objects this run wrote (a resumed run writes only what was missing). */
  readonly written: number;
}

export class CopyStoreError extends Error {
  override name = "CopyStoreError";
}

export async function copyStore(
  from: KeyStore,
  to: KeyStore,
  progress: (p: CopyProgress) => void = () => {},
): Promise<CopyProgress> {
  const [sourceRoot, targetRoot] = [await from.getMeta("rootKeyId"), await to.getMeta("rootKeyId")];
  if (sourceRoot !== undefined && targetRoot !== undefined && sourceRoot !== targetRoot)
    throw new CopyStoreError(
      `the target store is under root key ${targetRoot}, the source under ${sourceRoot}: copy into an empty store`,
    );
  if (await from.getMeta("rewrapInProgress"))
    throw new CopyStoreError(
      "the source store is half-way through keyhaven rewrap; finish that first",
    );
  let written = 0;
  for (const name of COPIED_META) {
    const value = await from.getMeta(name);
    if (value !== undefined && (await to.getMeta(name)) !== value) {
      await to.setMeta(name, value);
      written++;
    }
  }
  const totalKeys = (await from.countKeys()).reduce((n, c) => n + c.count, 0);
  let keys = 0;
  for (let after: string | undefined, first = true; first || after !== undefined; first = false) {
    const page = await from.listKeys(PAGE, after);
    for (const key of page.items) {
      if (!(await to.getKey(key.keyId))) {
        await to.createKey(key);
        written++;
      } else if (JSON.stringify(await to.getKey(key.keyId)) !== JSON.stringify(key)) {
        await to.updateKey(key.keyId, () => key);
        written++;
      }
      for (let v: string | undefined, more = true; more; more = v !== undefined) {
        const materials = await from.listMaterials(
          key.keyId,
          PAGE,
          v === undefined ? 0 : Number(v),
        );
        for (const m of materials.items)
          if (!(await to.getMaterial(m.keyId, m.version))) {
            await to.addMaterial(m);
            written++;
          }
        v = materials.next;
      }
      for (const p of await from.importParametersOf(key.keyId))
        if (!(await to.getImportParameters(p.tokenId))) {
          await to.putImportParameters(p);
          written++;
        }
      for (const grant of await from.grantsOf(key.keyId))
        if (!(await to.getGrant(grant.grantId))) {
          await to.createGrant(grant);
          written++;
        }
      keys++;
      progress({ keys, totalKeys, written });
    }
    after = page.next;
  }
  for (let after: string | undefined, first = true; first || after !== undefined; first = false) {
    const page = await from.listAliases(PAGE, after);
    for (const alias of page.items) {
      const existing = await to.getAlias(alias.name);
      if (existing?.targetKeyId === alias.targetKeyId) continue;
      try {
        if (existing) await to.updateAlias(alias.name, alias.targetKeyId, alias.updatedAt);
        else await to.createAlias(alias);
        written++;
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        throw new CopyStoreError(`alias ${alias.name} could not be copied: ${err.message}`);
      }
    }
    after = page.next;
  }
  const done = { keys, totalKeys, written };
  progress(done);
  return done;
}
