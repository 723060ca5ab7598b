/**
 * client-node implementation of the webhook's small interface (src/webhook/resources.ts):
 * the certificate Secret, the MutatingWebhookConfiguration's caBundle, namespace labels.
 */
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import {
  ResourceConflict,
  type StoredSecret,
  type WebhookResources,
} from "../webhook/resources.js";
import { apiStatus as status, MANAGED_BY } from "./secrets.js";

function decode(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

function encode(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]),
  );
}

export function webhookResources(kc: KubeConfig): WebhookResources {
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  return {
    async getSecret(namespace, name): Promise<StoredSecret | undefined> {
      try {
        const s = await core.readNamespacedSecret({ namespace, name });
        return { data: decode(s.data), resourceVersion: s.metadata?.resourceVersion ?? "" };
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw err;
      }
    },
    async putSecret(namespace, name, data, expectedVersion) {
      const body: V1Secret = {
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        metadata: {
          name,
          namespace,
          labels: MANAGED_BY,
          ...(expectedVersion !== undefined && { resourceVersion: expectedVersion }),
        },
        data: encode(data),
      };
      try {
        if (expectedVersion === undefined) await core.createNamespacedSecret({ namespace, body });
        else await core.replaceNamespacedSecret({ namespace, name, body });
      } catch (err) {
        if (status(err) === 409) throw new ResourceConflict(`Secret ${namespace}/${name} changed`);
        throw err;
      }
    },
    async getCaBundles(configName) {
      try {
        const c = await admission.readMutatingWebhookConfiguration({ name: configName });
        return (c.webhooks ?? []).map((w) =>
          Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString("utf8"),
        );
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw err;
      }
    },
    async setCaBundle(configName, caBundlePem) {
      const c = await admission.readMutatingWebhookConfiguration({ name: configName });
      const value = Buffer.from(caBundlePem, "utf8").toString("base64");
      // A JSON patch guarded by a test of the resourceVersion: never clobbers a concurrent edit.
      const patch = [
        { op: "test", path: "/metadata/resourceVersion", value: c.metadata?.resourceVersion },
        ...(c.webhooks ?? []).map((_, i) => ({
          op: "add",
          path: `/webhooks/${i}/clientConfig/caBundle`,
          value,
        })),
      ];
      await admission.patchMutatingWebhookConfiguration(
        { name: configName, body: patch },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
    },
    async getNamespaceLabels(name) {
      try {
        const ns = await core.readNamespace({ name });
        return ns.metadata?.labels ?? {};
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw err;
      }
    },
  };
}
