/**
 * A KMS v2 gRPC client for tests, built by @grpc/proto-loader from src/kmsplugin/api.proto:
 * the plugin's hand-written codec is checked against the published schema on every call.
 */
import { join } from "node:path";
import {
  credentials,
  loadPackageDefinition,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { REPO_ROOT } from "./server.js";

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
