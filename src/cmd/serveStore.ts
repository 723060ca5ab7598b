/**
 * The store of `keyhaven serve`: the SQLite file in the data folder, or the Kubernetes store
 * (docs/high-availability.md), and who runs the lifecycle timers. With SQLite the one
 * process does; with Kubernetes the replica holding the Lease `keyhaven-store-timers` in
 * the store's namespace does (and repairs what a replica killed mid-deletion left), so a
 * rotation or a deletion happens once however many replicas serve.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { ServeConfig } from "../config/config.js";
import type { LifecycleLoop } from "../kms/lifecycle/loop.js";
import type { CustomKeyStoreRepository } from "../kms/customkeystore/customKeyStoreRecord.js";
import type { KeyStore } from "../kms/store/keyStore.js";
import { SqliteKeyStore } from "../kms/store/sqliteKeyStore.js";
import { systemClock } from "../time.js";

export const TIMER_LEASE = "keyhaven-store-timers";
/** How often the timer lease holder looks for aliases and grants of deleted keys. */
const REPAIR_EVERY_MS = 5 * 60_000;

export interface OpenedStore {
  readonly store: KeyStore;
  /**
   * Where custom key stores are kept: the SQLite file; none on the Kubernetes store, where
   * their operations answer UnsupportedOperationException (docs/hsm.md).
   */
  readonly customKeyStores?: CustomKeyStoreRepository;
  /** Where the store is, for the log line. */
  readonly where: string;
  /** Runs the lifecycle timers on this replica when (and while) it is theirs to run; returns a stop function. */
  runTimers(lifecycle: LifecycleLoop): Promise<() => Promise<void>>;
}

export async function openStore(
  config: ServeConfig,
  dataDir: string,
  logger: Logger,
): Promise<OpenedStore> {
  const settings = config.store;
  if (settings.type === "sqlite") {
    const where = join(dataDir, "keyhaven.db");
    const store = new SqliteKeyStore(where);
    return {
      store,
      customKeyStores: store.customKeyStores,
      where,
      async runTimers(lifecycle) {
        await lifecycle.start();
        return () => lifecycle.stop();
      },
    };
  }
  // The Kubernetes client (a third of serve's start-up and ~45 MB of RSS) is loaded only
  // for this store.
  const [
    { LeaderElector },
    { clientNodeCluster },
    { loadKubeConfig },
    { storeSecrets },
    { KubernetesKeyStore },
  ] = await Promise.all([
    import("../controller/runtime/leaderElection.js"),
    import("../kube/clientNodeCluster.js"),
    import("../kube/kubeConfig.js"),
    import("../kube/storeSecrets.js"),
    import("../kubestore/kubernetesKeyStore.js"),
  ]);
  const kc = loadKubeConfig(config.kubeconfig);
  const { namespace } = settings;
  const store = await KubernetesKeyStore.open(storeSecrets(kc, namespace), {
    onError: (err) =>
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, "store watch error"),
  });
  return {
    store,
    where: `kubernetes:${namespace}`,
    async runTimers(lifecycle) {
      const elector = new LeaderElector({
        client: clientNodeCluster(kc),
        namespace,
        name: TIMER_LEASE,
        identity: `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`,
        timers: systemClock,
        logger,
      });
      const stop = new AbortController();
      const lead = (leading: AbortSignal) => {
        void lifecycle.start();
        const repair = () =>
          store.repairOrphans().then(
            (removed) => {
              if (removed > 0)
                logger.info({ removed }, "removed aliases and grants of deleted keys");
            },
            (err: unknown) => logger.warn({ err: (err as Error).message }, "store repair failed"),
          );
        void repair();
        const timer = setInterval(() => void repair(), REPAIR_EVERY_MS);
        timer.unref();
        leading.addEventListener("abort", () => {
          clearInterval(timer);
          void lifecycle.stop();
        });
      };
      const running = (async () => {
        // A lost lease (an API server outage longer than the renew deadline) is tried again.
        while (!stop.signal.aborted) await elector.run(stop.signal, lead);
      })();
      return async () => {
        stop.abort();
        await running;
        await lifecycle.stop();
      };
    },
  };
}
