/**
 * `keyhaven serve` processes, one per Region, peered with each other over loopback and
 * sharing one credentials file (whose admin is every instance's peering credential):
 * a multi-Region fleet for tests (docs/multi-region.md).
 */
import { freePort } from "./clusterWebhook.js";
import {
  spawnServer,
  tempDir,
  writeCredentialsFile,
  type SpawnedServer,
  type TestCredential,
} from "./server.js";

export interface PeeredFleet {
  readonly servers: ReadonlyMap<string, SpawnedServer>;
  readonly credential: TestCredential;
  stop(): Promise<void>;
}

export async function spawnPeered(regions: readonly string[]): Promise<PeeredFleet> {
  const ports = new Map<string, number>();
  for (const region of regions) ports.set(region, await freePort());
  const credentials = writeCredentialsFile(tempDir());
  const started = await Promise.all(
    regions.map((region) =>
      spawnServer({
        region,
        credentials,
        args: [
          "--listen",
          `127.0.0.1:${ports.get(region)}`,
          ...regions
            .filter((r) => r !== region)
            .flatMap((r) => ["--peer", `${r}=http://127.0.0.1:${ports.get(r)}`]),
        ],
        timeoutMs: 90_000,
      }),
    ),
  );
  const servers = new Map(regions.map((r, i) => [r, started[i]!]));
  return {
    servers,
    credential: credentials.credential,
    async stop() {
      for (const server of servers.values()) await server.stop();
    },
  };
}
