/**
 * Helpers for the lifecycle tests: a key service started in-process on a given data
 * folder with a fake clock, and the lifecycle loop's timer held on a second one and
 * fired by hand, so a test can walk a key through months of fake time with a restart
 * between steps.
 */
import { Writable } from "node:stream";
import { KMSClient } from "@aws-sdk/client-kms";
import { loadConfig, type ServeConfig } from "../src/config/config.js";
import { createLogger } from "../src/observability/logger.js";
import { startKeyService, type RunningKeyService } from "../src/cmd/serve.js";
import { ManualClock } from "./support/manualClock.js";
import { tempDir, writeCredentialsFile, type TestCredential } from "./support/server.js";

export const DAY = 24 * 60 * 60 * 1000;

export interface LifecycleServer {
  readonly running: RunningKeyService;
  readonly client: KMSClient;
  /** The lifecycle loop's timer: read its delay, fire it with advanceToNextTimer(). */
  readonly timers: ManualClock;
  output(): string;
  stop(): Promise<void>;
}

export interface Site {
  readonly dataDir: string;
  readonly credential: TestCredential;
  readonly credentialsPath: string;
}

export function newSite(): Site {
  const dataDir = tempDir("keyhaven-lifecycle-");
  const { path, credential } = writeCredentialsFile(dataDir);
  return { dataDir, credential, credentialsPath: path };
}

/** startKeyService on `site` with a fake clock; the SDK client signs with the same fake time. */
export async function startAt(site: Site, clock: ManualClock): Promise<LifecycleServer> {
  const config = loadConfig(
    [
      "serve",
      "--data",
      site.dataDir,
      "--listen",
      "127.0.0.1:0",
      "--credentials",
      site.credentialsPath,
    ],
    {},
  ) as ServeConfig;
  let captured = "";
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  const logger = createLogger("info", sink);
  const timers = new ManualClock(clock.now());
  const running = await startKeyService(config, {
    logger,
    audit: logger.child({ audit: true }),
    clock,
    timers,
    announce: () => undefined,
  });
  const client = new KMSClient({
    endpoint: running.url,
    region: "us-east-1",
    credentials: {
      accessKeyId: site.credential.accessKeyId,
      secretAccessKey: site.credential.secretAccessKey,
    },
    maxAttempts: 1,
    // SigV4's skew check uses the service clock: sign with the fake time too.
    systemClockOffset: clock.now().getTime() - Date.now(),
  });
  // The SDK corrects its clock from each response's Date header (real time); sign every
  // request with the fake time again.
  client.middlewareStack.add(
    (next) => async (args) => {
      client.config.systemClockOffset = clock.now().getTime() - Date.now();
      return next(args);
    },
    { step: "build", name: "fakeClockSigning" },
  );
  return {
    running,
    client,
    timers,
    output: () => captured,
    async stop() {
      client.destroy();
      await running.stop();
    },
  };
}

/** The key-material version a Keyhaven ciphertext blob names (format v1, bytes 17..21). */
export const blobVersion = (blob: Uint8Array): number =>
  Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(17);
