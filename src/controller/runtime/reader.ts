/**
 * Reads objects from the informer cache, without being fooled by the cache
 * lagging behind this controller's own writes: after a write, until the cache
 * shows a version other than the one written over, the written object is used.
 */
import type { KindName, ObjectsByKind } from "../../api/v1alpha1/types.js";

export type ObjectReader = <K extends KindName>(
  kind: K,
  namespace: string,
  name: string,
) => Promise<ObjectsByKind[K] | undefined>;

export class WriteThroughReader {
  readonly #written = new Map<string, { stale: Set<string>; obj: unknown }>();
  constructor(readonly cache: ObjectReader) {}

  readonly read: ObjectReader = async (kind, namespace, name) => {
    const key = `${kind}/${namespace}/${name}`;
    const cached = await this.cache(kind, namespace, name);
    const w = this.#written.get(key);
    if (!w) return cached;
    if (cached && w.stale.has(cached.metadata.resourceVersion)) return w.obj as typeof cached;
    this.#written.delete(key);
    return cached;
  };

  /** Records that `before` was replaced by `after` (undefined: the object is gone). */
  wrote(
    kind: KindName,
    before: { metadata: { namespace: string; name: string; resourceVersion: string } },
    after: unknown,
  ): void {
    const key = `${kind}/${before.metadata.namespace}/${before.metadata.name}`;
    const entry = this.#written.get(key) ?? { stale: new Set<string>(), obj: undefined };
    entry.stale.add(before.metadata.resourceVersion);
    entry.obj = after;
    this.#written.set(key, entry);
  }
}
