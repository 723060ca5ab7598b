/** The core/v1 Event both Cluster adapters record (clientNodeCluster.ts, embedded/cluster.ts). */
import type { KubeObject } from "../api/v1alpha1/types.js";
import type { EventInput } from "./cluster.js";

export function eventObject(
  obj: KubeObject,
  event: EventInput,
  component: string,
  now: Date,
): Record<string, unknown> {
  const time = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { generateName: `${obj.metadata.name}.`, namespace: obj.metadata.namespace },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
    },
    type: event.type,
    reason: event.reason,
    message: event.message,
    source: { component },
    reportingComponent: component,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}
