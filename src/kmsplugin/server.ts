/**
 * `keyhaven kms-plugin`: the KMS v2 gRPC service (`v2.KeyManagementService`, api.proto)
 * on a Unix socket, with @grpc/grpc-js and the hand-written codec of codec.ts.
 */
import { chmodSync, lstatSync, rmSync } from "node:fs";
import {
  Server,
  ServerCredentials,
  status as grpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
} from "@grpc/grpc-js";
import type { KMSClient } from "@aws-sdk/client-kms";
import { createKmsClient } from "../controller/kms.js";
import { systemClock, type Clock } from "../time.js";
import type { KmsPluginConfig } from "../config/config.js";
import type { Logger } from "../observability/logger.js";
import {
  decodeDecryptRequest,
  decodeEncryptRequest,
  encodeDecryptResponse,
  encodeEncryptResponse,
  encodeStatusResponse,
  type DecryptRequest,
  type DecryptResponse,
  type EncryptRequest,
  type EncryptResponse,
  type StatusResponse,
} from "./codec.js";
import { KmsPlugin, KmsPluginError } from "./plugin.js";

const unary = <Req, Res>(name: string, decode: (b: Buffer) => Req, encode: (r: Res) => Buffer) => ({
  path: `/v2.KeyManagementService/${name}`,
  requestStream: false,
  responseStream: false,
  originalName: name,
  // Server side only: the API server is the client.
  requestSerialize: (): Buffer => {
    throw new Error(`${name} requests are not sent by the plugin`);
  },
  requestDeserialize: decode,
  responseSerialize: encode,
  responseDeserialize: (): Res => {
    throw new Error(`${name} responses are not read by the plugin`);
  },
});

/** The service definition grpc-js serves (paths as the API server's generated client calls them). */
export const keyManagementService: ServiceDefinition = {
  Status: unary("Status", () => ({}), encodeStatusResponse),
  Decrypt: unary("Decrypt", decodeDecryptRequest, encodeDecryptResponse),
  Encrypt: unary("Encrypt", decodeEncryptRequest, encodeEncryptResponse),
};

/** Removes `path` only if it is a socket: a mistyped --listen must not delete a file. */
function removeSocket(path: string): void {
  if (lstatSync(path, { throwIfNoEntry: false })?.isSocket()) rmSync(path);
}

export interface RunningKmsPlugin {
  readonly plugin: KmsPlugin;
  stop(): Promise<void>;
}

/** Binds the socket (replacing a stale one) and serves until stop(). */
export async function startKmsPlugin(
  config: KmsPluginConfig,
  deps: {
    readonly logger: Logger;
    readonly clock?: Clock;
    /** A client of the key service; by default one for --kms-endpoint with the SDK's credential chain. */
    readonly kms?: KMSClient;
  },
): Promise<RunningKmsPlugin> {
  const { logger, clock = systemClock } = deps;
  const kms = deps.kms ?? createKmsClient({ endpoint: config.kmsEndpoint, region: config.region });
  const plugin = new KmsPlugin({
    kms,
    keyId: config.keyId,
    clusterName: config.clusterName,
    healthCheckIntervalMs: config.healthCheckIntervalSeconds * 1000,
    clock,
    logger,
  });
  const handle =
    <Req, Res>(operation: string, act: (req: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      act(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          const known = err instanceof KmsPluginError;
          if (!known) logger.error({ err, operation }, "kms-plugin request failed");
          else logger.warn({ operation, reason: err.message }, "kms-plugin request refused");
          callback({
            code: known ? grpcStatus[err.code] : grpcStatus.INTERNAL,
            details: known ? err.message : `${operation} failed; see the kms-plugin's log`,
          });
        },
      );
    };
  const server = new Server();
  server.addService(keyManagementService, {
    Status: handle<unknown, StatusResponse>("Status", () => plugin.status()),
    Encrypt: handle("Encrypt", async (req: EncryptRequest) => {
      const out = await plugin.encrypt(req);
      return { ...out, annotations: new Map() } satisfies EncryptResponse;
    }),
    Decrypt: handle("Decrypt", async (req: DecryptRequest): Promise<DecryptResponse> => ({
      plaintext: await plugin.decrypt(req),
    })),
  });
  // A socket left by a killed plugin would make bind fail with EADDRINUSE.
  removeSocket(config.socketPath);
  // Only the API server's user (root on a control-plane host) may ask for decryptions: the
  // socket is created 0600 (umask 177 while it is bound), so there is no moment at which
  // another local user could connect; the chmod after is belt and braces.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${config.socketPath}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  } finally {
    process.umask(umask);
  }
  chmodSync(config.socketPath, 0o600);
  logger.info(
    { socket: config.socketPath, keyId: config.keyId, cluster: config.clusterName },
    "kms-plugin listening",
  );
  return {
    plugin,
    async stop() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      if (deps.kms === undefined) kms.destroy();
      removeSocket(config.socketPath);
    },
  };
}
