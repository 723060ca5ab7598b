/**
 * `keyhaven migrate-store --from sqlite:PATH|kubernetes:NS --to ...`: copies a store into
 * another backend (src/kms/store/copyStore.ts), printing progress. Stop the key service
 * first; an interrupted run is finished by running the same command again.
 */
import type { MigrateStoreConfig } from "../config/config.js";
import type { StoreLocation } from "../config/migrateStore.js";
import { loadKubeConfig } from "../kube/kubeConfig.js";
import { storeSecrets } from "../kube/storeSecrets.js";
import { copyStore, CopyStoreError } from "../kms/store/copyStore.js";
import type { KeyStore } from "../kms/store/keyStore.js";
import { SqliteKeyStore } from "../kms/store/sqliteKeyStore.js";
import { KubernetesKeyStore } from "../kubestore/kubernetesKeyStore.js";
import { StartupError } from "./startupError.js";

const describe = (l: StoreLocation) =>
  l.type === "sqlite" ? `sqlite:${l.path}` : `kubernetes:${l.namespace}`;

export async function runMigrateStore(
  config: MigrateStoreConfig,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const open = async (l: StoreLocation): Promise<KeyStore> =>
    l.type === "sqlite"
      ? new SqliteKeyStore(l.path)
      : KubernetesKeyStore.open(storeSecrets(loadKubeConfig(config.kubeconfig), l.namespace));
  const from = await open(config.from);
  try {
    const to = await open(config.to);
    try {
      print(`copying ${describe(config.from)} → ${describe(config.to)}`);
      let shown = 0;
      const result = await copyStore(from, to, (p) => {
        if (
          p.keys === p.totalKeys ||
          p.keys >= shown + Math.max(1, Math.floor(p.totalKeys / 100))
        ) {
          shown = p.keys;
          print(`${p.keys}/${p.totalKeys} keys (${p.written} objects written by this run)`);
        }
      });
      print(
        `done: ${result.keys} keys with their material, aliases and grants are in ${describe(config.to)}; start keyhaven serve on it with the same root key`,
      );
      return 0;
    } finally {
      await to.close();
    }
  } catch (err) {
    if (err instanceof CopyStoreError)
      throw new StartupError(`${err.message} (nothing is lost: run the same command again)`);
    throw err;
  } finally {
    await from.close();
  }
}
