/**
 * `keyhaven kms-plugin` against a real key service (in process) over a real Unix
 * socket, called by a gRPC client that proto-loader builds from api.proto. The API
 * server's side is in cluster-kms-plugin.test.ts.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { CreateKeyCommand, RotateKeyOnDemandCommand, type KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type KmsPluginConfig } from "../src/config/config.js";
import { startKmsPlugin, type RunningKmsPlugin } from "../src/kmsplugin/server.js";
import { createLogger } from "../src/observability/logger.js";
import { ManualClock } from "./support/manualClock.js";
import { kmsPluginClient, type KmsPluginClient } from "./support/kmsPlugin.js";
import { kmsClient, startInProcess, tempDir, type InProcessServer } from "./support/server.js";

const INTERVAL_S = 30;

async function startPlugin(
  server: InProcessServer,
  kms: KMSClient,
  keyId: string,
  cluster: string,
  clock: ManualClock,
): Promise<{ running: RunningKmsPlugin; client: KmsPluginClient; socket: string }> {
  const socket = join(tempDir("keyhaven-kmsplugin-"), "kms.sock");
  const config = loadConfig(
    [
      "kms-plugin",
      "--listen",
      `unix://${socket}`,
      "--key-id",
      keyId,
      "--kms-endpoint",
      server.url,
      "--cluster-name",
      cluster,
      "--health-check-interval",
      String(INTERVAL_S),
    ],
    {},
  ) as KmsPluginConfig;
  const running = await startKmsPlugin(config, { logger: createLogger("silent"), clock, kms });
  return { running, client: kmsPluginClient(socket), socket };
}

const grpcCode = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (err: ServiceError) => err.code,
  );

describe("keyhaven kms-plugin", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  let keyArn: string;
  const clock = new ManualClock(new Date("2026-12-01T00:00:00Z"));
  let a: Awaited<ReturnType<typeof startPlugin>>;
  let b: Awaited<ReturnType<typeof startPlugin>>;

  beforeAll(async () => {
    server = await startInProcess();
    kms = kmsClient(server);
    keyArn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    a = await startPlugin(server, kms, keyArn, "cluster-a", clock);
    b = await startPlugin(server, kms, keyArn, "cluster-b", clock);
  });
  afterAll(async () => {
    a.client.close();
    b.client.close();
    await a.running.stop();
    await b.running.stop();
    kms.destroy();
    await server.stop();
  });

  it("binds its socket 0600 even under umask 000, and restores the umask", async () => {
    const before = process.umask(0);
    try {
      const c = await startPlugin(server, kms, keyArn, "cluster-c", clock);
      expect(statSync(c.socket).mode & 0o777).toBe(0o600);
      expect(process.umask()).toBe(0);
      c.client.close();
      await c.running.stop();
    } finally {
      process.umask(before);
    }
  });

  it("reports v2, healthy, and the key's ARN with its current material version", async () => {
    expect(await a.client.status()).toEqual({
      version: "v2",
      healthz: "ok",
      key_id: `${keyArn}#1`,
    });
  });

  it("wraps a DEK seed under the key and unwraps it again, with the same key id as Status", async () => {
    const seed = Buffer.alloc(32, 7);
    const sealed = await a.client.encrypt(seed);
    expect(sealed.key_id).toBe((await a.client.status()).key_id);
    expect(sealed.ciphertext.includes(seed)).toBe(false);
    expect(sealed.annotations).toEqual({});
    expect(
      await a.client.decrypt({ ciphertext: sealed.ciphertext, key_id: sealed.key_id }),
    ).toEqual(seed);
  });

  it("does not decrypt another cluster's ciphertext (the cluster name is the encryption context)", async () => {
    const sealed = await a.client.encrypt(Buffer.alloc(32, 1));
    expect(
      await grpcCode(b.client.decrypt({ ciphertext: sealed.ciphertext, key_id: sealed.key_id })),
    ).toBe(grpcStatus.INVALID_ARGUMENT);
  });

  it("refuses key ids it never issued and tampered ciphertext with INVALID_ARGUMENT", async () => {
    const sealed = await a.client.encrypt(Buffer.alloc(32, 2));
    expect(
      await grpcCode(
        a.client.decrypt({ ciphertext: sealed.ciphertext, key_id: "some-other-plugin" }),
      ),
    ).toBe(grpcStatus.INVALID_ARGUMENT);
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1]! ^= 1;
    expect(await grpcCode(a.client.decrypt({ ciphertext: tampered, key_id: sealed.key_id }))).toBe(
      grpcStatus.INVALID_ARGUMENT,
    );
    expect(await grpcCode(a.client.encrypt(Buffer.alloc(0)))).toBe(grpcStatus.INVALID_ARGUMENT);
  });

  it("changes its key id when the key rotates, and still decrypts under every key id it returned", async () => {
    const seed = Buffer.alloc(32, 3);
    const before = await a.client.encrypt(seed);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyArn }));
    // Status answers from its last round trip until the interval has passed.
    expect((await a.client.status()).key_id).toBe(before.key_id);
    clock.advance(INTERVAL_S * 1000);
    const status = await a.client.status();
    expect(status).toEqual({ version: "v2", healthz: "ok", key_id: `${keyArn}#2` });
    const after = await a.client.encrypt(seed);
    expect(after.key_id).toBe(status.key_id);
    expect(
      await a.client.decrypt({ ciphertext: before.ciphertext, key_id: before.key_id }),
    ).toEqual(seed);
    expect(await a.client.decrypt({ ciphertext: after.ciphertext, key_id: after.key_id })).toEqual(
      seed,
    );
  });

  it("reports the key service's failure in healthz once the interval has passed, and recovers", async () => {
    const { DisableKeyCommand, EnableKeyCommand } = await import("@aws-sdk/client-kms");
    await kms.send(new DisableKeyCommand({ KeyId: keyArn }));
    expect((await a.client.status()).healthz).toBe("ok");
    clock.advance(INTERVAL_S * 1000);
    const failing = await a.client.status();
    expect(failing.healthz).toMatch(/^Encrypt with arn:.*: DisabledException/);
    expect(await grpcCode(a.client.encrypt(Buffer.alloc(32, 4)))).toBe(
      grpcStatus.FAILED_PRECONDITION,
    );
    await kms.send(new EnableKeyCommand({ KeyId: keyArn }));
    // An unhealthy Status checks again at once: the API server polls faster while it fails.
    expect((await a.client.status()).healthz).toBe("ok");
  });

  it("does not delete a file that is not a socket at the --listen path", async () => {
    const path = join(tempDir("keyhaven-kmsplugin-"), "not-a-socket");
    writeFileSync(path, "keep me");
    const config = loadConfig(
      [
        "kms-plugin",
        "--listen",
        `unix://${path}`,
        "--key-id",
        keyArn,
        "--kms-endpoint",
        server.url,
      ],
      {},
    ) as KmsPluginConfig;
    await expect(
      startKmsPlugin(config, { logger: createLogger("silent"), clock, kms }),
    ).rejects.toThrow();
    expect(readFileSync(path, "utf8")).toBe("keep me");
  });
});
