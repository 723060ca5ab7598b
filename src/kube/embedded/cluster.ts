/** The Cluster interface over an EmbeddedApiServer, with no network in between. */
import {
  KINDS,
  type KindName,
  type KubeObject,
  type ObjectsByKind,
} from "../../api/v1alpha1/types.js";
import { systemClock, type Clock } from "../../time.js";
import { statusMergePatch, type Cluster, type StoredLease } from "../cluster.js";
import { isNotFound } from "../errors.js";
import { eventObject } from "../events.js";
import { Informer, type InformerOptions, type ListWatchSource } from "../informer.js";
import type { EmbeddedApiServer, StoredObject } from "./apiServer.js";

export interface EmbeddedClusterOptions {
  readonly timers?: Clock;
  readonly informer?: Partial<InformerOptions>;
  /** Where events are recorded; the API server's "events" resource by default. */
  readonly component?: string;
}

export function embeddedCluster(
  server: EmbeddedApiServer,
  options: EmbeddedClusterOptions = {},
): Cluster {
  const timers = options.timers ?? systemClock;
  const component = options.component ?? "keyhaven-controller";
  const plural = (kind: KindName) => KINDS[kind].plural;
  const informers = new Map<KindName, Informer<KubeObject>>();
  const asLease = (o: StoredObject): StoredLease => ({
    spec: o["spec"] ?? {},
    resourceVersion: o.metadata.resourceVersion,
  });

  return {
    async get(kind, namespace, name) {
      try {
        return server.get(plural(kind), namespace, name) as unknown as ObjectsByKind[typeof kind];
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async setFinalizers(kind, obj, finalizers) {
      const updated = server.patch(
        plural(kind),
        obj.metadata.namespace,
        obj.metadata.name,
        "merge",
        {
          metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers },
        },
      );
      const gone = updated.metadata.deletionTimestamp !== undefined && finalizers.length === 0;
      return gone ? undefined : (updated as unknown as ObjectsByKind[typeof kind]);
    },
    async patchStatus(kind, obj, status) {
      return server.patch(
        plural(kind),
        obj.metadata.namespace,
        obj.metadata.name,
        "merge",
        { status: statusMergePatch(obj.status, status) },
        "status",
      ) as unknown as ObjectsByKind[typeof kind];
    },
    async recordEvent(obj, event) {
      try {
        server.create(
          "events",
          obj.metadata.namespace,
          eventObject(obj, event, component, timers.now()),
        );
      } catch {
        // Events are best effort.
      }
    },
    async getLease(namespace, name) {
      try {
        return asLease(server.get("leases", namespace, name));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async createLease(namespace, name, spec) {
      return asLease(server.create("leases", namespace, { metadata: { name }, spec }));
    },
    async updateLease(namespace, name, spec, resourceVersion) {
      return asLease(
        server.replace("leases", namespace, name, {
          metadata: { name, namespace, resourceVersion },
          spec,
        }),
      );
    },
    informer<K extends KindName>(kind: K) {
      let informer = informers.get(kind);
      if (!informer) {
        informer = new Informer<KubeObject>(embeddedSource(server, plural(kind)), {
          timers,
          ...options.informer,
        });
        informers.set(kind, informer);
      }
      return informer as unknown as Informer<ObjectsByKind[K]>;
    },
  };
}

/** list+watch over the embedded server; events arrive asynchronously, as over a network. */
export function embeddedSource<T>(server: EmbeddedApiServer, plural: string): ListWatchSource<T> {
  return {
    async list() {
      const { items, resourceVersion } = server.list(plural);
      return { items: items as unknown as T[], resourceVersion };
    },
    async watch(resourceVersion, _timeoutSeconds, onEvent, onDone) {
      let open = true;
      let stop: () => void;
      try {
        stop = server.watch(plural, resourceVersion, (e) => {
          queueMicrotask(() => {
            if (open) onEvent(e.type, e.object as unknown as T);
          });
        });
      } catch (err) {
        queueMicrotask(() => onDone(err));
        return () => {};
      }
      return () => {
        if (!open) return;
        open = false;
        stop();
        onDone();
      };
    },
  };
}
