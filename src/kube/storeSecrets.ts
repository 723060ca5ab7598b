/**
 * The Secrets of the Kubernetes key store (src/kubestore/) in one namespace, on
 * client-node: reads from the API server (quorum), create, replace on resourceVersion
 * (409 when the Secret moved on), delete with a resourceVersion precondition, label
 * selected lists (paged), and an informer (list + watch) of every Secret labelled
 * `keyhaven.dev/store`. Values stay base64 as the API has them.
 */
import { CoreV1Api, type KubeConfig, type V1Secret, Watch } from "@kubernetes/client-node";
import { systemClock, type Clock } from "../time.js";
import { KubeApiError } from "./errors.js";
import { Informer, type InformerOptions, type ListWatchSource } from "./informer.js";
import { apiStatus } from "./secrets.js";

/** The label every store Secret carries; its value says what the Secret holds. */
export const STORE_LABEL = "keyhaven.dev/store";
/** The Secret type of store Secrets, so `kubectl get secrets` tells them apart. */
export const STORE_SECRET_TYPE = "keyhaven.dev/store";
const PAGE = 500;

export interface StoreSecret {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly resourceVersion: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  /** base64 values */
  readonly data?: Readonly<Record<string, string>>;
}

export interface StoreSecrets {
  readonly namespace: string;
  /** Every store Secret of the namespace, kept current by list + watch (relist on 410 Gone). */
  readonly informer: Informer<StoreSecret>;
  get(name: string): Promise<StoreSecret | undefined>;
  /** Store Secrets matching `selector` (ANDed with the store label), read from the API server. */
  list(selector: string): Promise<StoreSecret[]>;
  /** KubeApiError 409 (AlreadyExists) if the name is taken. */
  create(
    name: string,
    labels: Record<string, string>,
    data: Record<string, string>,
  ): Promise<StoreSecret>;
  /** Replaces labels and data if the Secret is still at `resourceVersion`; KubeApiError 409 if not, 404 if gone. */
  replace(
    name: string,
    resourceVersion: string,
    labels: Record<string, string>,
    data: Record<string, string>,
  ): Promise<StoreSecret>;
  /** False if there was none; KubeApiError 409 if `resourceVersion` is given and the Secret moved on. */
  delete(name: string, resourceVersion?: string): Promise<boolean>;
}

function kubeError(err: unknown): unknown {
  const code = apiStatus(err);
  if (code === undefined) return err;
  const body = (err as { body?: unknown }).body;
  let parsed: { reason?: string; message?: string } = {};
  try {
    parsed = (typeof body === "string" ? JSON.parse(body) : (body ?? {})) as typeof parsed;
  } catch {
    // not JSON
  }
  return new KubeApiError(code, parsed.reason ?? String(code), parsed.message ?? `HTTP ${code}`);
}

const asStoreSecret = (s: V1Secret): StoreSecret => s as unknown as StoreSecret;

export function storeSecrets(
  kc: KubeConfig,
  namespace: string,
  options: { timers?: Clock; informer?: Partial<InformerOptions> } = {},
): StoreSecrets {
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  const body = (
    name: string,
    labels: Record<string, string>,
    data: Record<string, string>,
    resourceVersion?: string,
  ): V1Secret => ({
    apiVersion: "v1",
    kind: "Secret",
    type: STORE_SECRET_TYPE,
    metadata: { name, namespace, labels, ...(resourceVersion && { resourceVersion }) },
    data,
  });
  const listAll = async (labelSelector: string) => {
    const items: StoreSecret[] = [];
    let resourceVersion = "";
    let cont: string | undefined;
    do {
      const page = await core
        .listNamespacedSecret({
          namespace,
          labelSelector,
          limit: PAGE,
          ...(cont && { _continue: cont }),
        })
        .catch((err: unknown) => {
          throw kubeError(err);
        });
      items.push(...page.items.map(asStoreSecret));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?._continue;
    } while (cont);
    return { items, resourceVersion };
  };
  const source: ListWatchSource<StoreSecret> = {
    list: () => listAll(STORE_LABEL),
    async watch(resourceVersion, timeoutSeconds, onEvent, onDone) {
      const controller = await watch.watch(
        `/api/v1/namespaces/${namespace}/secrets`,
        { labelSelector: STORE_LABEL, resourceVersion, timeoutSeconds, allowWatchBookmarks: true },
        (type: string, obj: StoreSecret) => onEvent(type as never, obj),
        (err: unknown) => onDone(err ?? undefined),
      );
      return () => controller.abort();
    },
  };
  const informer = new Informer<StoreSecret>(source, {
    timers: options.timers ?? systemClock,
    ...options.informer,
  });
  return {
    namespace,
    informer,
    async get(name) {
      try {
        return asStoreSecret(await core.readNamespacedSecret({ namespace, name }));
      } catch (err) {
        if (apiStatus(err) === 404) return undefined;
        throw kubeError(err);
      }
    },
    async list(selector) {
      return (await listAll(`${STORE_LABEL},${selector}`)).items;
    },
    async create(name, labels, data) {
      try {
        return asStoreSecret(
          await core.createNamespacedSecret({ namespace, body: body(name, labels, data) }),
        );
      } catch (err) {
        throw kubeError(err);
      }
    },
    async replace(name, resourceVersion, labels, data) {
      try {
        return asStoreSecret(
          await core.replaceNamespacedSecret({
            namespace,
            name,
            body: body(name, labels, data, resourceVersion),
          }),
        );
      } catch (err) {
        throw kubeError(err);
      }
    },
    async delete(name, resourceVersion) {
      try {
        await core.deleteNamespacedSecret({
          namespace,
          name,
          ...(resourceVersion && { body: { preconditions: { resourceVersion } } }),
        });
        return true;
      } catch (err) {
        if (apiStatus(err) === 404) return false;
        throw kubeError(err);
      }
    },
  };
}
