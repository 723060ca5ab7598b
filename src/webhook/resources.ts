/**
 * The Kubernetes objects the webhook reads and writes, as a small typed interface.
 * src/kube/webhookResources.ts implements it with @kubernetes/client-node; tests use
 * the in-memory implementation in test/support/kube/memoryWebhookResources.ts.
 */

export interface StoredSecret {
  /** Decoded values of `data` (the certificate Secret holds PEM text only). */
  readonly data: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
}

/** Someone else wrote the object first (HTTP 409): re-read and decide again. */
export class ResourceConflict extends Error {
  override name = "ResourceConflict";
}

export interface WebhookResources {
  getSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /**
   * Creates the Secret (when `expectedVersion` is undefined) or replaces it if it is
   * still at `expectedVersion`; throws ResourceConflict otherwise.
   */
  putSecret(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    expectedVersion?: string,
  ): Promise<void>;
  /** The caBundle of each webhook of a MutatingWebhookConfiguration; undefined if it does not exist. */
  getCaBundles(configName: string): Promise<readonly string[] | undefined>;
  /** Sets the caBundle (PEM) of every webhook in the configuration. */
  setCaBundle(configName: string, caBundlePem: string): Promise<void>;
  /** A namespace's labels; undefined if it does not exist. */
  getNamespaceLabels(name: string): Promise<Readonly<Record<string, string>> | undefined>;
}
