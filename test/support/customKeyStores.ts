/**
 * The AWS CLI's view of custom key stores, for the custom key store tests:
 *
 * - `cliError(r)`               the AWS error code a CLI run failed with.
 * - `describeStore(s, id)`      `aws kms describe-custom-key-stores` for one store.
 * - `untilState(s, id, state)`  polls that until ConnectionState is `state` (20 s at most).
 */
import { expect } from "vitest";
import { runCli, type ProcessResult } from "./clients.js";
import type { ServerHandle } from "./server.js";

type Server = Pick<ServerHandle, "url" | "region" | "credentials">;

export function cliError(r: ProcessResult): string | undefined {
  return /An error occurred \((\w+)\)/.exec(r.stderr)?.[1];
}

export async function describeStore(server: Server, id: string): Promise<Record<string, unknown>> {
  const r = await runCli(server, [
    "kms",
    "describe-custom-key-stores",
    "--custom-key-store-id",
    id,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return (r.json!["CustomKeyStores"] as Record<string, unknown>[])[0]!;
}

export async function untilState(
  server: Server,
  id: string,
  state: string,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const store = await describeStore(server, id);
    if (store["ConnectionState"] === state) return store;
    if (Date.now() > deadline)
      throw new Error(`store ${id} stayed ${String(store["ConnectionState"])}, not ${state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
