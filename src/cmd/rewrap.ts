/**
 * `keyhaven rewrap --from local|pkcs11 --to local|pkcs11`: moves the stores in the data
 * folder (every Region's) to another root key (src/kms/rewrap.ts), printing progress. The key service must
 * be stopped; an interrupted run is finished by running the same command again.
 */
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RewrapConfig } from "../config/config.js";
import { RewrapError, rewrapStore, type RewrapProgress } from "../kms/rewrap.js";
import { openRootKey, type OpenedRootKey } from "../kms/rootkey/openRootKey.js";
import { RootKeyError, RootKeyUnavailableError } from "../kms/rootkey/rootKey.js";
import { SqliteKeyStore } from "../kms/store/sqliteKeyStore.js";
import { StartupError } from "./startupError.js";

/** The stores of a data folder: keyhaven.db, then one per further Region (serve --region A,B). */
export function storesIn(dataDir: string): string[] {
  const regions = readdirSync(dataDir)
    .filter((name) => REGION_STORE.test(name))
    .sort();
  return ["keyhaven.db", ...regions].map((name) => join(dataDir, name));
}
const REGION_STORE = /^keyhaven-[a-z]+(?:-[a-z]+){1,2}-\d+\.db$/;

export async function runRewrap(
  config: RewrapConfig,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const dataDir = resolve(config.dataDir);
  const db = join(dataDir, "keyhaven.db");
  if (!existsSync(db)) throw new StartupError(`there is no store ${db}; give --data DIR`);
  const opened: OpenedRootKey[] = [];
  try {
    const open = (side: "--from" | "--to", create: boolean) => {
      const settings = side === "--from" ? config.from : config.to;
      const key = openRootKey(settings, dataDir, { create });
      opened.push(key);
      // Unlike serve, nothing here can wait for the HSM to come.
      const reason = key.rootKey.readiness?.();
      if (reason) throw new StartupError(`${side} ${settings.type}: ${reason}`);
      return key;
    };
    const from = open("--from", false);
    const to = open("--to", true);
    // Every Region's store, one after the other; each is resumable on its own, so a run
    // stopped anywhere is finished by the same command (done stores have nothing to do).
    const files = storesIn(dataDir);
    for (const [i, file] of files.entries()) {
      const store = new SqliteKeyStore(file);
      try {
        const which = files.length > 1 ? ` (store ${i + 1} of ${files.length})` : "";
        print(
          `rewrapping ${file}${which}: ${from.rootKey.id} (${from.where}) → ${to.rootKey.id} (${to.where})`,
        );
        let shown = 0;
        const result = await rewrapStore(
          store,
          from.rootKey,
          to.rootKey,
          (p: RewrapProgress) => {
            // About a hundred lines for a big store, every line for a small one.
            if (p.done === p.total || p.done >= shown + Math.max(1, Math.floor(p.total / 100))) {
              shown = p.done;
              print(`${p.done}/${p.total} wrapped values (${p.rewrapped} rewrapped by this run)`);
            }
          },
          store.customKeyStores,
        );
        if (result.total === 0) print(`${file} is already under ${to.rootKey.id}; nothing to do`);
      } finally {
        await store.close();
      }
    }
    print(
      `done: ${files.length === 1 ? "the store is" : `all ${files.length} stores are`} under ${to.rootKey.id}; start keyhaven serve with it`,
    );
    if (config.from.type === "local" && config.to.type !== "local")
      print(
        `${from.where} is no longer used by ${files.length === 1 ? "this store" : "these stores"}; keep it with your backups of the store until you no longer need them, then delete it`,
      );
    return 0;
  } catch (err) {
    if (
      err instanceof RewrapError ||
      err instanceof RootKeyError ||
      err instanceof RootKeyUnavailableError
    )
      throw new StartupError(`${err.message} (nothing is lost: run the same command again)`);
    throw err;
  } finally {
    for (const k of opened) await k.rootKey.close();
  }
}
