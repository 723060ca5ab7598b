/**
 * In-memory WebhookResources for tests: resourceVersion on every write, 409 on stale
 * replaces and on creating an existing Secret, like the API server.
 */
import {
  ResourceConflict,
  type StoredSecret,
  type WebhookResources,
} from "../../../src/webhook/resources.js";

export class MemoryWebhookResources implements WebhookResources {
  #version = 0;
  readonly secrets = new Map<string, StoredSecret>();
  /** MutatingWebhookConfiguration name → caBundle (PEM) of each webhook. */
  readonly webhookConfigs = new Map<string, string[]>();
  readonly namespaces = new Map<string, Record<string, string>>();
  /** Counts of writes, for assertions. */
  readonly writes = { secrets: 0, caBundles: 0 };

  async getSecret(namespace: string, name: string): Promise<StoredSecret | undefined> {
    return this.secrets.get(`${namespace}/${name}`);
  }

  async putSecret(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    expectedVersion?: string,
  ): Promise<void> {
    const key = `${namespace}/${name}`;
    const existing = this.secrets.get(key);
    if (
      expectedVersion === undefined
        ? existing !== undefined
        : existing?.resourceVersion !== expectedVersion
    )
      throw new ResourceConflict(`Secret ${key} changed`);
    this.secrets.set(key, { data: { ...data }, resourceVersion: String(++this.#version) });
    this.writes.secrets++;
  }

  async getCaBundles(configName: string): Promise<readonly string[] | undefined> {
    return this.webhookConfigs.get(configName);
  }

  async setCaBundle(configName: string, caBundlePem: string): Promise<void> {
    const webhooks = this.webhookConfigs.get(configName);
    if (!webhooks) throw new Error(`MutatingWebhookConfiguration ${configName} not found`);
    this.webhookConfigs.set(
      configName,
      webhooks.map(() => caBundlePem),
    );
    this.writes.caBundles++;
  }

  async getNamespaceLabels(name: string): Promise<Readonly<Record<string, string>> | undefined> {
    return this.namespaces.get(name);
  }
}
