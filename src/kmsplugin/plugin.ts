/**
 * The KMS v2 plugin's behaviour, apart from gRPC: the API server's DEK seed is wrapped
 * with the key service's Encrypt under one Keyhaven key, with the encryption context
 * {"keyhaven:cluster": <cluster name>} so that a ciphertext copied from another
 * cluster's etcd does not decrypt here (the context is authenticated data).
 *
 * key_id = "<key ARN>#<key-material version>", read from the Encrypt answer (KeyId) and
 * the Keyhaven ciphertext header (src/kms/crypto/ciphertext.ts). It stays the same until
 * the key rotates (or the alias moves), and then changes, which makes the API server
 * generate a new DEK seed. Every key id ever returned still decrypts: the ciphertext
 * carries the material version, and the ARN part pins Decrypt to that key.
 */
import { DecryptCommand, EncryptCommand, type KMSClient } from "@aws-sdk/client-kms";
import type { Clock } from "../time.js";
import { kmsErrorName } from "../controller/kms.js";
import { readCiphertextHeader } from "../kms/crypto/ciphertext.js";
import type { Logger } from "../observability/logger.js";
import type { DecryptRequest, EncryptRequest, StatusResponse } from "./codec.js";

/** The encryption context key naming the cluster (docs/encryption-at-rest.md). */
export const CLUSTER_CONTEXT_KEY = "keyhaven:cluster";

/** A failure the gRPC layer turns into a status code; `message` is safe to show the API server. */
export class KmsPluginError extends Error {
  override name = "KmsPluginError";
  constructor(
    readonly code: "INVALID_ARGUMENT" | "UNAVAILABLE" | "PERMISSION_DENIED" | "FAILED_PRECONDITION",
    message: string,
  ) {
    super(message);
  }
}

export interface KmsPluginOptions {
  readonly kms: KMSClient;
  /** Key id, ARN, alias name or alias ARN, as `--key-id` gave it. */
  readonly keyId: string;
  readonly clusterName: string;
  /** How long a good Encrypt/Decrypt round trip answers Status without a new one. */
  readonly healthCheckIntervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** "<ARN>#<version>" → its two parts; undefined for anything this plugin never returned. */
export function parseKeyId(keyId: string): { arn: string; version: number } | undefined {
  const m = /^(arn:[^#\s]+:key\/[^#\s]+)#([1-9]\d{0,9})$/.exec(keyId);
  return m ? { arn: m[1]!, version: Number(m[2]) } : undefined;
}

const HEALTH_PROBE = Buffer.from("keyhaven kms-plugin health check");

export class KmsPlugin {
  private currentKeyId = "";
  private healthz = "not checked yet";
  private checkedAt = -Infinity;
  private inFlight: Promise<void> | undefined;
  private readonly context: Record<string, string>;

  constructor(private readonly options: KmsPluginOptions) {
    this.context = { [CLUSTER_CONTEXT_KEY]: options.clusterName };
  }

  /** Cheap: answers from the last round trip while it is younger than the interval. */
  async status(): Promise<StatusResponse> {
    const age = this.options.clock.now().getTime() - this.checkedAt;
    if (this.healthz !== "ok" || age >= this.options.healthCheckIntervalMs) await this.check();
    return { version: "v2", healthz: this.healthz, keyId: this.currentKeyId };
  }

  async encrypt(request: EncryptRequest): Promise<{ ciphertext: Uint8Array; keyId: string }> {
    if (request.plaintext.length === 0)
      throw new KmsPluginError("INVALID_ARGUMENT", "Encrypt: the plaintext is empty");
    const out = await this.call("Encrypt", () =>
      this.options.kms.send(
        new EncryptCommand({
          KeyId: this.options.keyId,
          Plaintext: request.plaintext,
          EncryptionContext: this.context,
        }),
      ),
    );
    const keyId = this.keyIdOf(out.KeyId, out.CiphertextBlob);
    // Status and Encrypt must agree on the key id, or the API server keeps its old DEK seed.
    this.currentKeyId = keyId;
    return { ciphertext: out.CiphertextBlob!, keyId };
  }

  async decrypt(request: DecryptRequest): Promise<Uint8Array> {
    const key = parseKeyId(request.keyId);
    if (key === undefined)
      throw new KmsPluginError(
        "INVALID_ARGUMENT",
        `Decrypt: key_id '${request.keyId.slice(0, 200)}' was not issued by a Keyhaven kms-plugin (expected <key ARN>#<version>)`,
      );
    const out = await this.call("Decrypt", () =>
      this.options.kms.send(
        new DecryptCommand({
          KeyId: key.arn,
          CiphertextBlob: request.ciphertext,
          EncryptionContext: this.context,
        }),
      ),
    );
    return out.Plaintext!;
  }

  /** One Encrypt/Decrypt round trip; concurrent Status calls share it. */
  private check(): Promise<void> {
    this.inFlight ??= (async () => {
      try {
        const sealed = await this.encrypt({ plaintext: HEALTH_PROBE, uid: "" });
        const opened = await this.decrypt({
          ciphertext: Buffer.from(sealed.ciphertext),
          uid: "",
          keyId: sealed.keyId,
          annotations: new Map(),
        });
        if (!HEALTH_PROBE.equals(opened)) throw new Error("the round trip changed the bytes");
        if (this.healthz !== "ok")
          this.options.logger.info({ keyId: sealed.keyId }, "kms-plugin healthy");
        this.healthz = "ok";
        this.checkedAt = this.options.clock.now().getTime();
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (this.healthz !== reason) this.options.logger.warn({ reason }, "kms-plugin unhealthy");
        this.healthz = reason;
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }

  private keyIdOf(arn: string | undefined, blob: Uint8Array | undefined): string {
    if (arn === undefined || blob === undefined)
      throw new KmsPluginError(
        "UNAVAILABLE",
        "Encrypt: the key service answered without a KeyId or CiphertextBlob",
      );
    try {
      return `${arn}#${readCiphertextHeader(blob).materialVersion}`;
    } catch {
      throw new KmsPluginError(
        "FAILED_PRECONDITION",
        `Encrypt: ${arn} is not a Keyhaven symmetric key (the ciphertext has no Keyhaven header); use a SYMMETRIC_DEFAULT key of a Keyhaven key service`,
      );
    }
  }

  /** Runs a key service call; its failure becomes a KmsPluginError naming the AWS exception. */
  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      const name = kmsErrorName(err);
      const detail = err instanceof Error ? err.message : String(err);
      if (name === undefined)
        throw new KmsPluginError(
          "UNAVAILABLE",
          `${operation}: the key service is unreachable (${detail}); check --kms-endpoint and that it is running`,
        );
      const code =
        name === "InvalidCiphertextException" ||
        name === "IncorrectKeyException" ||
        name === "ValidationException"
          ? "INVALID_ARGUMENT"
          : name === "AccessDeniedException" || name === "UnrecognizedClientException"
            ? "PERMISSION_DENIED"
            : name === "KMSInternalException" || name === "ThrottlingException"
              ? "UNAVAILABLE"
              : "FAILED_PRECONDITION";
      throw new KmsPluginError(code, `${operation} with ${this.options.keyId}: ${name}: ${detail}`);
    }
  }
}
