/**
 * A KMS v2 gRPC client for tests, built by @grpc/proto-loader from src/kmsplugin/api.proto:
 * the plugin's hand-written codec is checked against the published schema on every call.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import {
  credentials,
  loadPackageDefinition,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { MAIN_JS, REPO_ROOT, type ServerHandle } from "./server.js";

export const API_PROTO = join(REPO_ROOT, "src", "kmsplugin", "api.proto");

export interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

export interface KmsPluginClient {
  status(): Promise<StatusResponse>;
  encrypt(plaintext: Buffer, uid?: string): Promise<EncryptResponse>;
  decrypt(request: {
    ciphertext: Buffer;
    key_id: string;
    uid?: string;
    annotations?: Record<string, Buffer>;
  }): Promise<Buffer>;
  close(): void;
}

export const packageDefinition = loadSync(API_PROTO, { keepCase: true, defaults: true });

/** A client of the plugin listening on `socketPath`. */
export function kmsPluginClient(socketPath: string): KmsPluginClient {
  const v2 = loadPackageDefinition(packageDefinition)["v2"] as Record<string, unknown>;
  const Service = v2["KeyManagementService"] as ServiceClientConstructor;
  const client = new Service(`unix://${socketPath}`, credentials.createInsecure()) as Client &
    Record<
      string,
      (req: unknown, opts: object, cb: (err: ServiceError | null, res: unknown) => void) => void
    >;
  const call = <T>(method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method]!(req, { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      ),
    );
  return {
    status: () => call<StatusResponse>("Status", {}),
    encrypt: (plaintext, uid = "test") => call<EncryptResponse>("Encrypt", { plaintext, uid }),
    decrypt: async (req) =>
      (await call<{ plaintext: Buffer }>("Decrypt", { uid: "test", annotations: {}, ...req }))
        .plaintext,
    close: () => client.close(),
  };
}

export interface SpawnedKmsPlugin {
  readonly socket: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs `node dist/src/main.js kms-plugin` for `keyId` on `socket` against `server`, with
 * only the standard AWS_* variables as credentials, and waits until it listens.
 */
export async function spawnKmsPlugin(options: {
  server: ServerHandle;
  keyId: string;
  socket: string;
  clusterName: string;
  healthCheckIntervalSeconds?: number;
}): Promise<SpawnedKmsPlugin> {
  const { server } = options;
  const child = spawn(
    process.execPath,
    [
      MAIN_JS,
      "kms-plugin",
      "--listen",
      `unix://${options.socket}`,
      "--key-id",
      options.keyId,
      "--cluster-name",
      options.clusterName,
      "--health-check-interval",
      String(options.healthCheckIntervalSeconds ?? 1),
    ],
    {
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        AWS_ENDPOINT_URL_KMS: server.url,
        AWS_REGION: server.region,
        AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`kms-plugin did not listen within 15 s:\n${output}`));
    }, 15_000);
    const onData = () => {
      if (!output.includes('"msg":"kms-plugin listening"')) return;
      clearTimeout(timer);
      child.stdout.off("data", onData);
      resolve();
    };
    child.stdout.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`kms-plugin exited before listening:\n${output}`));
    });
  });
  return {
    socket: options.socket,
    output: () => output,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
