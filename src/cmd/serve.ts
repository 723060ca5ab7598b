/**
 * `keyhaven serve`: opens the data folder (root key, store, credentials), starts
 * the key service, and returns a handle that shuts it down cleanly.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { createSecureContext, rootCertificates } from "node:tls";
import type { Logger } from "pino";
import { systemClock, type Clock } from "../time.js";
import type { ServeConfig } from "../config/config.js";
import { pooledRandom } from "../kms/crypto/random.js";
import { PrivateKeyWorkers } from "../kms/crypto/privateKeyWorkers.js";
import {
  createAdminCredentialsFile,
  loadCredentialsFile,
  principalsWithoutPolicies,
  type Credential,
} from "../kms/identity/credentialsFile.js";
import { KeyService } from "../kms/keyService.js";
import type { RunningSeed } from "../controller/seed.js";
import { CustomKeyStores } from "../kms/customkeystore/customKeyStores.js";
import { cloudHsmKeyStoreType } from "../kms/customkeystore/cloudHsmKeyStore.js";
import { externalKeyStoreType } from "../kms/customkeystore/externalKeyStore.js";
import { LifecycleLoop } from "../kms/lifecycle/loop.js";
import { policyAuthorizer } from "../kms/access/policyAuthorizer.js";
import { KmsServer } from "../kms/protocol/server.js";
import { KeyServiceMetrics, rootKeyProbe } from "../kms/metrics/keyServiceMetrics.js";
import { operations } from "../kms/operations/index.js";
import { loadIdentityFile } from "../kms/identity/credentialsFile.js";
import { jwksFromFile } from "../kms/identity/jwksFile.js";
import { jwksFromUrl, type JwksSource } from "../kms/identity/jwksUrl.js";
import { openSessionKey } from "../kms/identity/sessionKey.js";
import { StsError, WebIdentityProvider } from "../kms/identity/webIdentity.js";
import type { ServiceAccountLabels } from "../kube/serviceAccountLabels.js";
import { openRootKey, type OpenedRootKey } from "../kms/rootkey/openRootKey.js";
import { RootKeyError } from "../kms/rootkey/rootKey.js";
import { REWRAP_META } from "../kms/rewrap.js";
import { createLogger } from "../observability/logger.js";
import { SyncDestination } from "../observability/syncDestination.js";
import { StartupError } from "./startupError.js";
import { XksProxy } from "../kms/xks/proxy.js";
import { isXksCredential } from "../kms/xks/wire.js";
import type { KeyStore } from "../kms/store/keyStore.js";
import { SqliteKeyStore } from "../kms/store/sqliteKeyStore.js";
import { PeerClient } from "../kms/peering/peerClient.js";
import { openPeeringKey } from "../kms/peering/peeringKey.js";
import { openStore, type OpenedStore } from "./serveStore.js";

const readFlagFile = (flag: string, file: string): Buffer => {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new StartupError(`${flag} ${file}: ${(err as Error).message}`);
  }
};

/** --xks-client-ca's certificates and Node's public ones (an Agent's `ca` replaces them). */
function xksClientCa(file: string): string {
  const pem = readFlagFile("--xks-client-ca", file).toString("utf8");
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new StartupError(`--xks-client-ca ${file}: no PEM certificate in it`);
  return [...rootCertificates, pem].join("\n");
}

/** The TLS certificate chain and key, checked to be PEM that belongs together. */
export function readTlsFiles(tls: NonNullable<ServeConfig["tls"]>): { cert: Buffer; key: Buffer } {
  const read = readFlagFile;
  const files = { cert: read("--tls-cert", tls.certFile), key: read("--tls-key", tls.keyFile) };
  try {
    createSecureContext(files);
  } catch (err) {
    throw new StartupError(
      `--tls-cert ${tls.certFile} / --tls-key ${tls.keyFile}: ${(err as Error).message}; give a PEM certificate chain and its PEM private key`,
    );
  }
  return files;
}

/**
 * The configured root key; a local key file with loose permissions or the wrong size, a
 * PKCS#11 module that does not load or a refused PIN is a StartupError that says what to
 * fix. An HSM that cannot be reached yet is not: /readyz reports it until it can.
 */
function startRootKey(config: ServeConfig, dataDir: string, logger: Logger): OpenedRootKey {
  try {
    return openRootKey(config.rootKey, dataDir, { logger });
  } catch (err) {
    if (err instanceof RootKeyError) throw new StartupError(err.message);
    throw err;
  }
}

/**
 * The data folder holds the store, the credentials and usually the root key: refuse to
 * start when group or others can reach it (see docs/security.md, "File modes").
 */
function assertPrivateFolder(dir: string): void {
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new StartupError(
      `the data folder ${dir} is open to group or others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 700 ${dir}`,
    );
}

/** Audit lines to the --audit-log file (created 0600), else to stdout marked `audit: true`. */
function openAudit(path: string | undefined): { audit: Logger; sink: SyncDestination } {
  let sink: SyncDestination;
  try {
    sink = new SyncDestination(path ?? 1, { strict: true });
  } catch (err) {
    throw new StartupError(`--audit-log ${path}: ${(err as Error).message}`);
  }
  const audit = createLogger("info", sink);
  return { audit: path ? audit : audit.child({ audit: true }), sink };
}

export interface RunningKeyService {
  readonly url: string;
  readonly server: KmsServer;
  readonly service: KeyService;
  /** Performs due rotations, deletions and material expiry (see kms/lifecycle/loop.ts). */
  readonly lifecycle: LifecycleLoop;
  /** The --seed reconcilers, when a seed folder was given (docs/operator.md). */
  readonly seed?: RunningSeed;
  stop(): Promise<void>;
}

export interface ServeDependencies {
  readonly logger?: Logger;
  readonly audit?: Logger;
  readonly clock?: Clock;
  /** Where the lifecycle loop arms its timer (tests fire it by hand); the system clock by default. */
  readonly timers?: Clock;
  /** Where first-start instructions go (the export lines); stdout by default. */
  readonly announce?: (text: string) => void;
  /**
   * Set in a worker of `serve --workers` (cmd/serveWorkers.ts): whether this worker runs
   * the lifecycle timers and the --seed reconcilers (exactly one does).
   */
  readonly worker?: { readonly runsTimers: boolean };
  /** Labels of a ServiceAccount (principal tags of its web-identity sessions), e.g. from the cluster. */
  readonly serviceAccountLabels?: (
    namespace: string,
    name: string,
  ) => Promise<Readonly<Record<string, string>> | undefined>;
}

export async function startKeyService(
  config: ServeConfig,
  deps: ServeDependencies = {},
): Promise<RunningKeyService> {
  // Audit lines are written (write(2)) before the response is sent, and a request whose
  // line cannot be written is refused (docs/security.md, "Audit"). When they share stdout
  // with the logs, the logs are written the same way, so the two never interleave.
  const { audit, sink: auditSink } = deps.audit
    ? { audit: deps.audit, sink: undefined }
    : openAudit(config.auditLog);
  const logger =
    deps.logger ??
    createLogger(
      config.logLevel,
      config.auditLog ? undefined : new SyncDestination(1, { strict: false }),
    );
  const announce = deps.announce ?? ((text: string) => process.stdout.write(text));
  const folder = await openDataFolder(config, logger);
  const { dataDir, rootKey, opened, stores, credentials, createdAdmin } = folder;
  const store = opened.store;
  // Started on first use: a server without RSA/ECC traffic runs no worker thread.
  const privateKeyWorkers = new PrivateKeyWorkers();
  const clock = deps.clock ?? systemClock;
  // Custom key stores: AWS_CLOUDHSM, tokens reached through --pkcs11-module (docs/hsm.md), and
  // EXTERNAL_KEY_STORE, XKS proxies (docs/external-key-stores.md); kept in the SQLite file,
  // so none on the Kubernetes store.
  const customKeyStores =
    opened.customKeyStores &&
    new CustomKeyStores({
      repository: opened.customKeyStores,
      rootKey,
      types: [
        cloudHsmKeyStoreType({ modulePath: config.pkcs11Module, logger }),
        externalKeyStoreType({
          region: config.region,
          timeoutMs: config.xksClient.timeoutMs,
          ...(config.xksClient.caFile !== undefined && {
            ca: xksClientCa(config.xksClient.caFile),
          }),
          logger,
        }),
      ],
      now: () => clock.now().getTime(),
      logger,
    });
  await customKeyStores?.start();
  // Multi-Region keys: other instances by Region, and this process's own Regions (its own
  // URL, known once it listens) reached the same way.
  const peering = config.peers.size > 0 || config.regions.length > 1;
  const peerUrls = new Map(config.peers);
  const peers = peering
    ? new PeerClient({
        urls: peerUrls,
        credential: peerCredential(config, credentials),
        now: () => clock.now(),
      })
    : undefined;
  const random = pooledRandom();
  const services = new Map<string, KeyService>();
  for (const [region, regionStore] of stores)
    services.set(
      region,
      new KeyService({
        account: config.account,
        region,
        store: regionStore,
        rootKey,
        clock,
        random,
        privateKeyWorkers,
        // Custom key stores live in the first Region's store.
        ...(customKeyStores && region === config.region && { customKeyStores }),
        ...(peers && { peers, peeringKey: await openPeeringKey(regionStore, rootKey) }),
      }),
    );
  const service = services.get(config.region)!;
  const metrics = new KeyServiceMetrics({
    operations: [...operations.keys()],
    countKeys: async () =>
      (await Promise.all([...stores.values()].map((st) => st.countKeys()))).flat(),
    // Nothing is buffered in the process (observability/syncDestination.ts): no backlog.
    // An injected audit logger (embedding, tests) has no sink whose failures we could count.
    auditStats: () => ({ backlogBytes: 0, writeFailures: auditSink?.writeFailures ?? 0 }),
    rootKeyHealthy: rootKeyProbe(rootKey),
    defaultMetrics: true,
  });
  // Whatever fell due while the server was down (rotations, deletions, expiries) happens
  // before the first request is served.
  const lifecycles = [...services.values()].map(
    (regionService) =>
      new LifecycleLoop(regionService, {
        logger,
        audit,
        metrics,
        ...(deps.timers && { timers: deps.timers }),
      }),
  );
  const lifecycle = lifecycles[0]!;
  // The first Region's timers run as its store says (one replica on the kubernetes store);
  // the other Regions' files belong to this process alone.
  const runsTimers = deps.worker?.runsTimers ?? true;
  const stopTimers = runsTimers ? await opened.runTimers(lifecycle) : async () => undefined;
  if (runsTimers) for (const loop of lifecycles.slice(1)) await loop.start();
  // Everything opened above, for a failed start-up and for stop().
  const release = async () => {
    await stopTimers();
    for (const loop of lifecycles.slice(1)) await loop.stop();
    for (const each of stores.values()) await each.close();
    await customKeyStores?.close();
    await privateKeyWorkers.close();
    await rootKey.close();
  };
  let webIdentity: WebIdentityProvider | undefined;
  let jwksSource: JwksSource | undefined;
  if (config.webIdentity) {
    const w = config.webIdentity;
    let keys;
    try {
      if (w.jwksFile.startsWith("https://")) {
        jwksSource = await jwksFromUrl(w.jwksFile, {
          ...(w.jwksCaFile !== undefined && { caFile: w.jwksCaFile }),
          ...(w.jwksTokenFile !== undefined && { tokenFile: w.jwksTokenFile }),
        });
        const source = jwksSource;
        keys = () => source.keys();
      } else keys = jwksFromFile(w.jwksFile);
    } catch (err) {
      await release();
      throw new StartupError(`--web-identity-jwks ${w.jwksFile}: ${(err as Error).message}`);
    }
    const refreshable = jwksSource;
    const labels =
      deps.serviceAccountLabels ??
      (w.serviceAccountLabels === "cluster" ? await clusterLabels(config.kubeconfig) : undefined);
    webIdentity = new WebIdentityProvider({
      issuer: w.issuer,
      audience: w.audience,
      maxSessionSeconds: w.maxSessionSeconds,
      keys,
      ...(refreshable && { refreshKeys: () => refreshable.refresh() }),
      account: config.account,
      sessionKey: await openSessionKey(store, rootKey),
      serviceAccounts: loadIdentityFile(config.credentialsFile ?? join(dataDir, "credentials.yaml"))
        .serviceAccounts,
      ...(labels && { labels }),
      random: (n) => randomBytes(n),
    });
  }
  const authorizer = policyAuthorizer();
  const xks =
    config.xksProxyPrefix === undefined ? undefined : startXksProxy(config.xksProxyPrefix);
  function startXksProxy(prefix: string): XksProxy {
    const proxy = new XksProxy({
      prefix,
      service,
      authorizer,
      credentials: (id) => credentials.get(id),
      healthy: rootKeyProbe(rootKey),
      version: packageVersion(),
    });
    const usable = [...credentials.values()].filter((c) =>
      isXksCredential(c.accessKeyId, c.secretAccessKey),
    );
    if (usable.length === 0)
      logger.warn(
        "no credential can call the XKS proxy: give one an access key id of 20-30 characters and a secret of 43-64 (docs/external-key-stores.md)",
      );
    if (!config.tls)
      logger.warn(
        "the XKS proxy is served over plain HTTP; AWS KMS requires HTTPS with a public CA's certificate: give --tls-cert and --tls-key, or terminate TLS in front",
      );
    logger.info(
      { xksProxyUriPath: proxy.uriPath, credentials: usable.map((c) => c.accessKeyId) },
      "XKS proxy enabled",
    );
    return proxy;
  }
  const server = new KmsServer({
    service,
    ...(services.size > 1 && { regions: services }),
    authorizer,
    credentials: (id, token) => credentials.get(id) ?? webIdentity?.lookup(id, token),
    ...(webIdentity && { webIdentity }),
    logger,
    audit,
    metrics,
    ...(config.tls && { tls: readTlsFiles(config.tls) }),
    ...(xks && { xks }),
  });
  let address;
  try {
    address = await server.listen(config.listen.host, config.listen.port);
  } catch (err) {
    await release();
    throw new StartupError(
      `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`,
    );
  }
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `${config.tls ? "https" : "http"}://${host}:${address.port}`;
  const selfUrl = dialable(url);
  for (const region of config.regions) peerUrls.set(region, selfUrl);
  if (createdAdmin) announce(adminInstructions(createdAdmin, config, url));
  logger.info(
    {
      url,
      region: config.region,
      ...(config.regions.length > 1 && { regions: config.regions }),
      ...(config.peers.size > 0 && { peers: Object.fromEntries(config.peers) }),
      account: config.account,
      store: opened.where,
      ...(deps.worker && { pid: process.pid, runsTimers }),
    },
    // A worker's line; the primary says "key service listening" once all listen.
    deps.worker ? "worker listening" : "key service listening",
  );
  // With --audit-log the log stream buffers for throughput; push lines out promptly so
  // that the listening line (which supervisors and tests wait for) shows up without
  // waiting for 4 KiB of traffic.
  logger.flush();
  const flushTimer = setInterval(() => {
    logger.flush();
    audit.flush();
  }, 1000);
  flushTimer.unref();

  // --seed: the operator's reconcilers apply the manifests through this server's own API.
  let seed: RunningSeed | undefined;
  const seedCredential = credentials.values().next().value;
  if (config.seedDir && seedCredential && runsTimers) {
    // Loaded only for --seed (and the Kubernetes client only for cluster labels below):
    // the reconcilers and the AWS SDK are most of a plain server's start-up and memory.
    const { SeedError, startSeed } = await import("../controller/seed.js");
    try {
      seed = await startSeed({
        dir: config.seedDir,
        endpoint: selfUrl,
        region: config.region,
        credentials: seedCredential,
        logger,
      });
    } catch (err) {
      await server.close();
      await release();
      if (err instanceof SeedError) throw new StartupError(err.message);
      throw err;
    }
  }

  return {
    url,
    server,
    service,
    lifecycle,
    ...(seed && { seed }),
    async stop() {
      clearInterval(flushTimer);
      jwksSource?.close();
      await seed?.stop();
      await server.close();
      await release();
      logger.info("key service stopped");
      audit.flush();
      logger.flush();
      auditSink?.close();
    },
  };
}

/** What openDataFolder opened: the root key, the store of each Region, the credentials. */
export interface DataFolder {
  readonly dataDir: string;
  readonly rootKey: OpenedRootKey["rootKey"];
  /** Where the root key is, for messages. */
  readonly where: string;
  readonly opened: OpenedStore;
  readonly stores: ReadonlyMap<string, KeyStore>;
  readonly credentials: Map<string, Credential>;
  /** The admin credential written on first start (the instructions are printed once listening). */
  readonly createdAdmin?: Credential & { path: string };
  close(): Promise<void>;
}

/**
 * The one-time work of a start: the data folder, the root key (generated on first start),
 * each Region's store (schema migrations) checked against the root key, and the
 * credentials (generated on first start). With --workers the primary does it before
 * forking, so that workers find everything made and never race to make it.
 */
export async function openDataFolder(config: ServeConfig, logger: Logger): Promise<DataFolder> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  assertPrivateFolder(dataDir);

  const { rootKey, created, where } = startRootKey(config, dataDir, logger);
  if (created)
    logger.info(
      { rootKeyId: rootKey.id, path: where },
      "generated a new local root key; back it up with the store",
    );
  if (config.regions.length > 1 && config.store.type !== "sqlite") {
    await rootKey.close();
    throw new StartupError(
      `--region ${config.regions.join(",")}: several Regions in one process need --store sqlite (one file per Region); run one replica set per Region on the kubernetes store`,
    );
  }
  // The first Region's store is --store's; any other Region's is DIR/keyhaven-<region>.db
  // (docs/multi-region.md).
  const opened = await openStore(config, dataDir, logger);
  const store = opened.store;
  const stores = new Map<string, KeyStore>([[config.region, store]]);
  try {
    await checkStore(store, rootKey, where);
    for (const region of config.regions.slice(1)) {
      const regionStore = new SqliteKeyStore(join(dataDir, `keyhaven-${region}.db`));
      stores.set(region, regionStore);
      await checkStore(regionStore, rootKey, where);
    }
  } catch (err) {
    for (const each of stores.values()) await each.close();
    await rootKey.close();
    throw err;
  }

  const { credentials, createdAdmin } = loadOrCreateCredentials(config, dataDir, logger);
  const unauthorized = principalsWithoutPolicies(credentials);
  if (unauthorized.length > 0)
    logger.warn(
      { count: unauthorized.length, principals: unauthorized },
      "credentials without policies are allowed nothing; give each the caller policies it needs",
    );
  return {
    dataDir,
    rootKey,
    where,
    opened,
    stores,
    credentials,
    ...(createdAdmin && { createdAdmin }),
    async close() {
      for (const each of stores.values()) await each.close();
      await rootKey.close();
    },
  };
}

/** The version in package.json (the XKS health answer names it), from src/cmd/ or dist/src/cmd/. */
function packageVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === "keyhaven" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // Not this one.
    }
  }
  return "unknown";
}

function loadOrCreateCredentials(
  config: ServeConfig,
  dataDir: string,
  logger: Logger,
): { credentials: Map<string, Credential>; createdAdmin?: Credential & { path: string } } {
  if (config.credentialsFile) return { credentials: loadCredentialsFile(config.credentialsFile) };
  const path = join(dataDir, "credentials.yaml");
  if (existsSync(path)) {
    logger.info({ path }, "using credentials from the data folder");
    return { credentials: loadCredentialsFile(path) };
  }
  // Created 0600 by createAdminCredentialsFile (open with O_EXCL and that mode).
  const admin = createAdminCredentialsFile(path, config.account);
  return { credentials: new Map([[admin.accessKeyId, admin]]), createdAdmin: { ...admin, path } };
}

/** The listening URL as a client on this machine dials it: a wildcard address becomes loopback. */
const dialable = (url: string) =>
  url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:");

/** The first-start text, printed once the real address is known (port 0 picks one). */
export function adminInstructions(
  admin: Credential & { path: string },
  config: ServeConfig,
  url: string,
): string {
  const endpoint = dialable(url);
  return [
    `Created an admin credential in ${admin.path} (principal ${admin.principal}).`,
    "Use it with the AWS CLI or any AWS SDK:",
    "",
    `  export AWS_ACCESS_KEY_ID=${admin.accessKeyId}`,
    `  export AWS_SECRET_ACCESS_KEY=${admin.secretAccessKey}`,
    `  export AWS_REGION=${config.region} AWS_DEFAULT_REGION=${config.region}`,
    `  export AWS_ENDPOINT_URL_KMS=${endpoint}`,
    "",
    "",
  ].join("\n");
}

/** The ServiceAccount labels of `keyhaven serve --web-identity-labels cluster`, from the API server. */
async function clusterLabels(kubeconfig: string | undefined): Promise<ServiceAccountLabels> {
  const [{ ServiceAccountNotFound, serviceAccountLabelsFromCluster }, { loadKubeConfig }] =
    await Promise.all([import("../kube/serviceAccountLabels.js"), import("../kube/kubeConfig.js")]);
  return stsLabels(
    serviceAccountLabelsFromCluster(loadKubeConfig(kubeconfig)),
    ServiceAccountNotFound,
  );
}

/**
 * ServiceAccount labels for STS, failing closed in STS's words: a session without the
 * labels a Deny condition may test would be allowed more than it should.
 */
function stsLabels(
  read: ServiceAccountLabels,
  ServiceAccountNotFound: new (...args: never[]) => Error,
): ServiceAccountLabels {
  return async (namespace, name) => {
    try {
      return await read(namespace, name);
    } catch (err) {
      if (err instanceof ServiceAccountNotFound) {
        throw new StsError(
          "InvalidIdentityToken",
          `${err.message}; the token's ServiceAccount is gone.`,
        );
      }
      throw new StsError(
        "IDPCommunicationError",
        `Could not read the labels of ServiceAccount ${namespace}/${name} from the API server (${(err as Error).message}); try again.`,
      );
    }
  };
}

/** Checks that a store is under this root key and not halfway through a rewrap. */
async function checkStore(store: KeyStore, rootKey: OpenedRootKey["rootKey"], where: string) {
  const knownRootKey = await store.getMeta("rootKeyId");
  const rewrapping = await store.getMeta(REWRAP_META);
  if (rewrapping)
    throw new StartupError(
      `an interrupted keyhaven rewrap to ${rewrapping} left this store under two root keys; run the same rewrap command again to finish it`,
    );
  if (knownRootKey === undefined) await store.setMeta("rootKeyId", rootKey.id);
  else if (knownRootKey !== rootKey.id)
    throw new StartupError(
      `the root key (${where}, ${rootKey.id}) is not the one this store was written with (${knownRootKey}); use that root key (for a local one, restore the original root key file), or move the store with keyhaven rewrap`,
    );
}

/** The credential that signs calls to peers: --peer-credential, else the first of the file. */
function peerCredential(config: ServeConfig, credentials: ReadonlyMap<string, Credential>) {
  const chosen =
    config.peerCredential === undefined
      ? credentials.values().next().value
      : credentials.get(config.peerCredential);
  if (!chosen)
    throw new StartupError(
      config.peerCredential === undefined
        ? "peering needs a credential to sign calls to peers, and the credentials file has none"
        : `--peer-credential ${config.peerCredential}: no such access key id in the credentials file`,
    );
  return chosen;
}
