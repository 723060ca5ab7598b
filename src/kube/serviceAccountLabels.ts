/**
 * ServiceAccount labels from the API server, which web-identity sessions carry as
 * principal tags (aws:PrincipalTag/<label>). Reads are cached for `ttlMs` (a label
 * change reaches new sessions within that time) and bounded by `timeoutMs`.
 */
import { ApiException, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";

export class ServiceAccountNotFound extends Error {
  override name = "ServiceAccountNotFound";
}

export interface ServiceAccountLabelsOptions {
  readonly ttlMs?: number;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

export type ServiceAccountLabels = (
  namespace: string,
  name: string,
) => Promise<Readonly<Record<string, string>>>;

/**
 * Labels of a ServiceAccount; throws ServiceAccountNotFound if it does not exist, and
 * any other error (unreachable, forbidden, timeout) as it is: callers fail closed.
 */
export function serviceAccountLabelsFromCluster(
  kc: KubeConfig,
  options: ServiceAccountLabelsOptions = {},
): ServiceAccountLabels {
  const core = kc.makeApiClient(CoreV1Api);
  const ttlMs = options.ttlMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; labels: Readonly<Record<string, string>> }>();
  return async (namespace, name) => {
    const key = `${namespace}/${name}`;
    const hit = cache.get(key);
    if (hit && now() - hit.at < ttlMs) return hit.labels;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`reading ServiceAccount ${key} took over ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const sa = await Promise.race([
        core.readNamespacedServiceAccount({ namespace, name }),
        timeout,
      ]);
      const labels = Object.freeze({ ...(sa.metadata?.labels ?? {}) });
      if (cache.size >= 10_000) cache.clear();
      cache.set(key, { at: now(), labels });
      return labels;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) {
        cache.delete(key);
        throw new ServiceAccountNotFound(`ServiceAccount ${key} does not exist`);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
}
