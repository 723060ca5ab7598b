/**
 * The Cluster interface on the real @kubernetes/client-node@1.4.0 — the only
 * module that imports it. Writes: finalizers by JSON merge patch carrying
 * metadata.resourceVersion (the API server answers 409 if the object moved on),
 * status by JSON merge patch on the /status subresource, Leases by PUT with their
 * resourceVersion, Events as core/v1 Events. Watches use client-node's Watch inside
 * our own Informer loop (informer.ts), since 1.4.0's ListWatch stops on errors,
 * has no backoff and no client-side timeout.
 */
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  V1MicroTime,
  type CoreV1Event,
  type V1Lease,
  type V1Secret,
} from "@kubernetes/client-node";
import {
  GROUP,
  KINDS,
  VERSION,
  type KindName,
  type KubeObject,
  type ObjectsByKind,
} from "../api/v1alpha1/types.js";
import { systemClock, type Clock } from "../time.js";
import {
  KubeApiError,
  statusMergePatch,
  type Cluster,
  type LeaseRecord,
  type SecretClient,
  type SecretObject,
  type StoredLease,
} from "./cluster.js";
import { Informer, type InformerOptions, type ListWatchSource } from "./informer.js";
import { eventObject } from "./events.js";

/**
 * One list of KmsKeys (limit 1), as the informers will do: undefined when the API
 * server answers, else what is wrong and what to do about it (unreachable, bad
 * credentials, no RBAC, CRDs not installed). Gives up after `timeoutMs`.
 */
export async function checkApiServer(
  kc: KubeConfig,
  options: { watchNamespace?: string; timeoutMs?: number } = {},
): Promise<string | undefined> {
  // Every kind the controller watches: an informer on a resource the server does not serve
  // would wait for ever (a chart upgrade does not add new CRDs).
  const server = kc.getCurrentCluster()?.server ?? "(no server in the kubeconfig)";
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const { plural } of Object.values(KINDS)) {
    const problem = await checkServes(custom, server, plural, options);
    if (problem) return problem;
  }
  return undefined;
}

async function checkServes(
  custom: CustomObjectsApi,
  server: string,
  plural: string,
  options: { watchNamespace?: string; timeoutMs?: number },
): Promise<string | undefined> {
  const where = options.watchNamespace ? ` in namespace ${options.watchNamespace}` : "";
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs ?? 10_000);
  });
  try {
    const list = options.watchNamespace
      ? custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
          namespace: options.watchNamespace,
          limit: 1,
        })
      : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural, limit: 1 });
    if ((await Promise.race([list, timeout])) === "timeout")
      return `the Kubernetes API server at ${server} did not answer within ${(options.timeoutMs ?? 10_000) / 1000} s; check --kubeconfig and that the API server is up`;
    return undefined;
  } catch (err) {
    const e = apiError(err);
    if (!(e instanceof KubeApiError))
      return `cannot reach the Kubernetes API server at ${server}: ${(e as Error).message}; check --kubeconfig and that the API server is up`;
    if (e.status === 404)
      return `the Kubernetes API server at ${server} does not serve ${plural}.${GROUP}/${VERSION}: install the CRDs first (kubectl apply -f crds/, or the Helm chart; helm upgrade does not add CRDs new in a release, so apply crds/ after upgrading)`;
    if (e.status === 401)
      return `the Kubernetes API server at ${server} refused the credentials of the kubeconfig (401 ${e.reason})`;
    if (e.status === 403)
      return `the Kubernetes API server at ${server} does not allow listing ${plural}${where} (403): grant the RBAC in docs/operator.md`;
    return `the Kubernetes API server at ${server} answered ${e.status} ${e.reason}: ${e.message}`;
  } finally {
    clearTimeout(timer);
  }
}

export interface ClientNodeClusterOptions {
  readonly timers?: Clock;
  readonly informer?: Partial<InformerOptions>;
  readonly component?: string;
  /** Only watch this namespace (default: all namespaces). */
  readonly watchNamespace?: string;
}

/** Turns client-node's errors into KubeApiError (status + reason). */
function apiError(err: unknown): unknown {
  if (err instanceof ApiException) {
    let body: { reason?: string; message?: string } = {};
    try {
      body =
        typeof err.body === "string"
          ? (JSON.parse(err.body) as typeof body)
          : ((err.body ?? {}) as typeof body);
    } catch {
      // not JSON
    }
    return new KubeApiError(
      err.code,
      body.reason ?? String(err.code),
      body.message ?? `HTTP ${err.code}`,
    );
  }
  return err;
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw apiError(err);
  }
}

export function clientNodeCluster(kc: KubeConfig, options: ClientNodeClusterOptions = {}): Cluster {
  const timers = options.timers ?? systemClock;
  const component = options.component ?? "keyhaven-controller";
  const custom = kc.makeApiClient(CustomObjectsApi);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const informers = new Map<KindName, Informer<KubeObject>>();
  const ref = (kind: KindName, obj: KubeObject) => ({
    group: GROUP,
    version: VERSION,
    plural: KINDS[kind].plural,
    namespace: obj.metadata.namespace,
    name: obj.metadata.name,
  });
  const asLease = (l: V1Lease): StoredLease => ({
    spec: {
      ...(l.spec?.holderIdentity !== undefined && { holderIdentity: l.spec.holderIdentity }),
      ...(l.spec?.leaseDurationSeconds !== undefined && {
        leaseDurationSeconds: l.spec.leaseDurationSeconds,
      }),
      ...(l.spec?.acquireTime && {
        acquireTime: new V1MicroTime(l.spec.acquireTime).toISOString(),
      }),
      ...(l.spec?.renewTime && { renewTime: new V1MicroTime(l.spec.renewTime).toISOString() }),
      ...(l.spec?.leaseTransitions !== undefined && { leaseTransitions: l.spec.leaseTransitions }),
    },
    resourceVersion: l.metadata?.resourceVersion ?? "",
  });
  const leaseBody = (
    namespace: string,
    name: string,
    spec: LeaseRecord,
    resourceVersion?: string,
  ): V1Lease => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion && { resourceVersion }) },
    spec: {
      ...(spec.holderIdentity !== undefined && { holderIdentity: spec.holderIdentity }),
      ...(spec.leaseDurationSeconds !== undefined && {
        leaseDurationSeconds: spec.leaseDurationSeconds,
      }),
      // V1MicroTime serializes with six fractional digits; a plain Date's three are refused.
      ...(spec.acquireTime && { acquireTime: new V1MicroTime(spec.acquireTime) }),
      ...(spec.renewTime && { renewTime: new V1MicroTime(spec.renewTime) }),
      ...(spec.leaseTransitions !== undefined && { leaseTransitions: spec.leaseTransitions }),
    },
  });

  return {
    async get(kind, namespace, name) {
      try {
        return (await custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: KINDS[kind].plural,
          namespace,
          name,
        })) as ObjectsByKind[typeof kind];
      } catch (err) {
        const e = apiError(err);
        if (e instanceof KubeApiError && e.status === 404) return undefined;
        throw e;
      }
    },
    async setFinalizers(kind, obj, finalizers) {
      const updated = (await call(() =>
        custom.patchNamespacedCustomObject(
          {
            ...ref(kind, obj),
            body: { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers } },
          },
          merge,
        ),
      )) as ObjectsByKind[typeof kind];
      const gone = obj.metadata.deletionTimestamp !== undefined && finalizers.length === 0;
      return gone ? undefined : updated;
    },
    async patchStatus(kind, obj, status) {
      return (await call(() =>
        custom.patchNamespacedCustomObjectStatus(
          { ...ref(kind, obj), body: { status: statusMergePatch(obj.status, status) } },
          merge,
        ),
      )) as ObjectsByKind[typeof kind];
    },
    async recordEvent(obj, event) {
      try {
        await core.createNamespacedEvent({
          namespace: obj.metadata.namespace,
          body: eventObject(obj, event, component, timers.now()) as unknown as CoreV1Event,
        });
      } catch {
        // Events are best effort.
      }
    },
    async getLease(namespace, name) {
      try {
        return asLease(await coordination.readNamespacedLease({ namespace, name }));
      } catch (err) {
        const e = apiError(err);
        if (e instanceof KubeApiError && e.status === 404) return undefined;
        throw e;
      }
    },
    async createLease(namespace, name, spec) {
      return asLease(
        await call(() =>
          coordination.createNamespacedLease({ namespace, body: leaseBody(namespace, name, spec) }),
        ),
      );
    },
    async updateLease(namespace, name, spec, resourceVersion) {
      return asLease(
        await call(() =>
          coordination.replaceNamespacedLease({
            namespace,
            name,
            body: leaseBody(namespace, name, spec, resourceVersion),
          }),
        ),
      );
    },
    secrets: secretClient(core),
    informer<K extends KindName>(kind: K) {
      let informer = informers.get(kind);
      if (!informer) {
        const plural = KINDS[kind].plural;
        const path = options.watchNamespace
          ? `/apis/${GROUP}/${VERSION}/namespaces/${options.watchNamespace}/${plural}`
          : `/apis/${GROUP}/${VERSION}/${plural}`;
        const source: ListWatchSource<KubeObject> = {
          async list() {
            const list = (await call(() =>
              options.watchNamespace
                ? custom.listNamespacedCustomObject({
                    group: GROUP,
                    version: VERSION,
                    plural,
                    namespace: options.watchNamespace,
                  })
                : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }),
            )) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
            return {
              items: list.items ?? [],
              resourceVersion: list.metadata?.resourceVersion ?? "",
            };
          },
          async watch(resourceVersion, timeoutSeconds, onEvent, onDone) {
            const controller = await watch.watch(
              path,
              { resourceVersion, timeoutSeconds, allowWatchBookmarks: true },
              (type: string, obj: KubeObject) => onEvent(type as never, obj),
              (err: unknown) => onDone(err ?? undefined),
            );
            return () => controller.abort();
          },
        };
        informer = new Informer<KubeObject>(source, { timers, ...options.informer });
        informers.set(kind, informer);
      }
      return informer as unknown as Informer<ObjectsByKind[K]>;
    },
  };
}

/** Secrets through CoreV1Api; the objects pass through as the API gives them. */
function secretClient(core: CoreV1Api): SecretClient {
  const asSecret = (s: V1Secret) => s as unknown as SecretObject;
  return {
    async getSecret(namespace, name) {
      try {
        return asSecret(await core.readNamespacedSecret({ namespace, name }));
      } catch (err) {
        const e = apiError(err);
        if (e instanceof KubeApiError && e.status === 404) return undefined;
        throw e;
      }
    },
    async createSecret(secret) {
      const body = { apiVersion: "v1", kind: "Secret", ...secret } as V1Secret;
      return asSecret(
        await call(() =>
          core.createNamespacedSecret({ namespace: secret.metadata.namespace, body }),
        ),
      );
    },
    async replaceSecret(secret) {
      const body = { apiVersion: "v1", kind: "Secret", ...secret } as V1Secret;
      return asSecret(
        await call(() =>
          core.replaceNamespacedSecret({
            namespace: secret.metadata.namespace,
            name: secret.metadata.name,
            body,
          }),
        ),
      );
    },
    async deleteSecret(namespace, name, uid) {
      try {
        await core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid } } });
      } catch (err) {
        const e = apiError(err);
        // Gone already, or another Secret of that name now (409: the uid precondition).
        if (e instanceof KubeApiError && (e.status === 404 || e.status === 409)) return;
        throw e;
      }
    },
  };
}
