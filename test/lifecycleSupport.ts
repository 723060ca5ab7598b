/**
 * Helpers for the lifecycle tests: a fake clock, timers fired by hand, and a key
 * service started in-process on a given data folder with both, so a test can walk a
 * key through months of fake time with a restart between steps.
 */
import { Writable } from "node:stream";
import { KMSClient } from "@aws-sdk/client-kms";
import type { Clock } from "../src/clock.js";
import { loadConfig, type ServeConfig } from "../src/config/config.js";
import type { TimerApi } from "../src/kms/lifecycle/loop.js";
import { createLogger } from "../src/observability/logger.js";
import { startKeyService, type RunningKeyService } from "../src/cmd/serve.js";
import { tempDir, writeCredentialsFile, type TestCredential } from "./support/server.js";

export const DAY = 24 * 60 * 60 * 1000;

export class FakeClock implements Clock {
  #t: number;
  constructor(start: Date) {
    this.#t = start.getTime();
  }
  now(): Date {
    return new Date(this.#t);
  }
  set(t: number): void {
    this.#t = t;
  }
  advance(ms: number): void {
    this.#t += ms;
  }
}

/** The lifecycle loop's timer, held instead of run: a test reads the delay and fires it. */
export class ManualTimers implements TimerApi {
  pending: { fn: () => void; ms: number; handle: number } | undefined;
  #next = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending = { fn, ms, handle: ++this.#next };
    return this.#next;
  }
  clearTimeout(handle: unknown): void {
    if (this.pending?.handle === handle) this.pending = undefined;
  }
  /** Runs the armed timer, as if its delay had passed. */
  fire(): void {
    const p = this.pending;
    if (!p) throw new Error("no timer armed");
    this.pending = undefined;
    p.fn();
  }
}

export interface LifecycleServer {
  readonly running: RunningKeyService;
  readonly client: KMSClient;
  readonly timers: ManualTimers;
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
export async function startAt(site: Site, clock: FakeClock): Promise<LifecycleServer> {
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
  const timers = new ManualTimers();
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
