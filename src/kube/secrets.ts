/** What the Secret-writing adapters (webhookResources.ts, secretDataKeyStore.ts) share. */
import { ApiException } from "@kubernetes/client-node";

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "keyhaven" };

/** The HTTP status of a failed client-node call, if it got that far. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
