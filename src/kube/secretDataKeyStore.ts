/** client-node implementation of the agent's data-key store (src/agent/dataKeyStore.ts). */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { DataKeyStoreError, type DataKeyStore, type StoredDataKey } from "../agent/dataKeyStore.js";
import { apiStatus as status, MANAGED_BY } from "./secrets.js";

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
