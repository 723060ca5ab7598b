/**
 * client-node implementations of the webhook's and the agent's small interfaces:
 * the certificate Secret, the MutatingWebhookConfiguration's caBundle, namespace
 * labels (src/webhook/resources.ts), and the Secret that keeps a workload's encrypted
 * data key (src/agent/dataKeyStore.ts).
 */
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { DataKeyStoreError, type DataKeyStore, type StoredDataKey } from "../agent/dataKeyStore.js";
import {
  ResourceConflict,
  type StoredSecret,
  type WebhookResources,
} from "../webhook/resources.js";

const MANAGED_BY = { "app.kubernetes.io/managed-by": "keyhaven" };

function status(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

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

/** In-cluster config when running in a pod, else `file`, else KUBECONFIG / ~/.kube/config. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
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

/**
 * The workload's data-key Secrets, reached with the pod's own ServiceAccount (it needs
 * `get` and `create` on secrets in its namespace; docs/injection.md has the Role).
 */
export function secretDataKeyStore(kc: KubeConfig, namespace: string): DataKeyStore {
  const core = kc.makeApiClient(CoreV1Api);
  const explain = (err: unknown, verb: string, name: string) => {
    const code = status(err);
    if (code === 403)
      return new DataKeyStoreError(
        `the pod's ServiceAccount may not ${verb} Secret ${namespace}/${name}; grant it get and create on secrets (see docs/injection.md)`,
        true,
      );
    return new DataKeyStoreError(
      `could not ${verb} Secret ${namespace}/${name}: ${err instanceof Error ? err.message : String(err)}`,
      code !== undefined && code >= 400 && code < 500 && code !== 429,
    );
  };
  return {
    describe: (name) => `Secret ${namespace}/${name}`,
    async get(name): Promise<StoredDataKey | undefined> {
      try {
        const s = await core.readNamespacedSecret({ namespace, name });
        const ciphertext = s.data?.["ciphertext"];
        const keyId = s.data?.["key-id"];
        if (!ciphertext || !keyId) return undefined;
        return {
          ciphertext: Buffer.from(ciphertext, "base64"),
          keyId: Buffer.from(keyId, "base64").toString("utf8"),
        };
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw explain(err, "read", name);
      }
    },
    async create(name, value) {
      try {
        await core.createNamespacedSecret({
          namespace,
          body: {
            apiVersion: "v1",
            kind: "Secret",
            type: "Opaque",
            metadata: {
              name,
              namespace,
              labels: { ...MANAGED_BY, "keyhaven.dev/data-key": "true" },
            },
            data: {
              ciphertext: value.ciphertext.toString("base64"),
              "key-id": Buffer.from(value.keyId).toString("base64"),
            },
          },
        });
        return "created";
      } catch (err) {
        if (status(err) === 409) return "exists";
        throw explain(err, "create", name);
      }
    },
  };
}
