/**
 * `keyhaven agent`: the program the webhook injects as an init container (or a native
 * sidecar). It reaches the key service with whatever credentials the AWS SDK finds — in
 * a pod, the projected ServiceAccount token exchanged through STS
 * AssumeRoleWithWebIdentity, which the SDK does by itself from AWS_ROLE_ARN,
 * AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ENDPOINT_URL_STS — and writes into the shared
 * memory volume (files mode 0400, directories 0700):
 *
 *   <dir>/data-key               the data key's plaintext (32 raw bytes, AES-256)
 *   <dir>/data-key.ciphertext    its CiphertextBlob (raw bytes; decrypt with KMS Decrypt)
 *   <dir>/env/<container>/<NAME> each decrypted `keyhaven:<base64>` env value (raw bytes)
 *   <dir>/env/<container>.env    NAME='value' lines the command wrapper sources
 *   <dir>/.ready                 written last; the native sidecar's startup probe waits for it
 *
 * The data key is stable for the workload: its ciphertext is kept in a DataKeyStore and
 * decrypted on later starts. Transient failures (the key service or STS still starting,
 * throttling, 5xx) are retried with capped exponential backoff until a deadline;
 * permanent ones (unknown key, access denied, bad ciphertext) end the agent at once
 * with AWS's error text, so the pod does not start without its secrets.
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Clock } from "../time.js";
import { DataKeyStoreError, type DataKeyStore } from "./dataKeyStore.js";
import { AgentError, workloadContext, type AgentPlan, type EncryptedEnv } from "./plan.js";

export { AgentError, parsePlan, type AgentPlan } from "./plan.js";

export interface RetryPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Give up on transient errors after this long (default 5 minutes). */
  readonly deadlineMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 15_000,
  deadlineMs: 300_000,
};

export interface AgentDependencies {
  readonly kms: Pick<KMSClient, "send">;
  readonly store: DataKeyStore;
  readonly dir: string;
  /** Progress lines (never secrets). */
  readonly log: (line: string) => void;
  /** Reads the time and waits between retries (tests pass a fake one). */
  readonly clock: Clock;
  /** Ends a wait between retries early (the program is stopping). */
  readonly signal?: AbortSignal;
  readonly retry?: RetryPolicy;
}

const TRANSIENT_NAMES = new Set([
  "KMSInternalException",
  "DependencyTimeoutException",
  "KeyUnavailableException",
  "ThrottlingException",
  "ThrottlingError",
  "TooManyRequestsException",
  "RequestTimeout",
  "TimeoutError",
  "IDPCommunicationError",
]);
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

interface SdkLikeError {
  name?: string;
  message?: string;
  code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** Whether an error from the SDK (KMS call or its STS credential exchange) is worth retrying. */
export function isTransient(err: unknown): boolean {
  for (let e = err as SdkLikeError | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
    if (e.code && TRANSIENT_CODES.has(e.code)) return true;
    if (e.$fault === "server" || (e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
    e = e.cause as SdkLikeError | undefined;
  }
  return false;
}

function describe(err: unknown): string {
  const e = err as SdkLikeError;
  const name = e?.name && e.name !== "Error" ? e.name : e?.code;
  const message = e?.message ?? String(err);
  const hint =
    name === "CredentialsProviderError"
      ? " (in a pod the keyhaven webhook sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE; elsewhere set AWS_* credentials)"
      : "";
  return `${name ? `${name}: ${message}` : message}${hint}`;
}

async function withRetry<T>(
  what: string,
  deps: AgentDependencies,
  call: () => Promise<T>,
): Promise<T> {
  const policy = deps.retry ?? DEFAULT_RETRY;
  const start = deps.clock.now().getTime();
  let delay = policy.initialDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const permanent =
        err instanceof DataKeyStoreError
          ? err.permanent
          : err instanceof AgentError
            ? err.permanent
            : !isTransient(err);
      const text =
        err instanceof DataKeyStoreError || err instanceof AgentError ? err.message : describe(err);
      if (permanent) throw new AgentError(`${what} failed: ${text}`, true);
      if (deps.clock.now().getTime() - start + delay > policy.deadlineMs)
        throw new AgentError(`${what} still failing after ${attempt} attempts: ${text}`, false);
      deps.log(`${what} failed (${text}); retrying in ${delay} ms`);
      await deps.clock.sleep(delay, deps.signal);
      delay = Math.min(policy.maxDelayMs, delay * 2);
    }
  }
}

/** Writes a file atomically with mode 0400 (rename over the old one works even though it is read-only). */
function writeSecretFile(path: string, content: Uint8Array | string): void {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, content, { mode: 0o400, flag: "wx" });
  renameSync(tmp, path);
}

/** `NAME='value'` with single quotes escaped, as POSIX sh reads it. */
export function shellAssignment(name: string, value: string): string {
  return `${name}='${value.replaceAll("'", `'\\''`)}'\n`;
}

export interface AgentResult {
  readonly files: readonly string[];
  readonly dataKey?: { readonly keyId: string; readonly reused: boolean };
}

/** One pass: fetch everything in the plan and (re)write the files. */
export async function runAgentOnce(plan: AgentPlan, deps: AgentDependencies): Promise<AgentResult> {
  mkdirSync(deps.dir, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  let dataKey: AgentResult["dataKey"];
  // Bound to the workload: another ServiceAccount that can read this data key's Secret
  // cannot decrypt it where key policies require the context (docs/injection.md).
  const context = plan.workload && { EncryptionContext: workloadContext(plan.workload) };

  if (plan.dataKey) {
    const { keyId, secretName } = plan.dataKey;
    const where = deps.store.describe(secretName);
    let stored = await withRetry(`reading the data key from ${where}`, deps, () =>
      deps.store.get(secretName),
    );
    let plaintext: Uint8Array | undefined;
    let ciphertext: Uint8Array;
    let reused = true;
    if (!stored) {
      const generated = await withRetry(`GenerateDataKey with key ${keyId}`, deps, () =>
        deps.kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256", ...context })),
      );
      const fresh = { ciphertext: Buffer.from(generated.CiphertextBlob!), keyId: generated.KeyId! };
      const outcome = await withRetry(`saving the data key to ${where}`, deps, () =>
        deps.store.create(secretName, fresh),
      );
      if (outcome === "created") {
        plaintext = Buffer.from(generated.Plaintext!); // a copy: the SDK's array is wiped below
        ciphertext = fresh.ciphertext;
        reused = false;
      } else {
        // Another pod of the workload saved its key first: use that one.
        stored = await withRetry(`reading the data key from ${where}`, deps, () =>
          deps.store.get(secretName),
        );
        if (!stored) throw new AgentError(`${where} vanished right after it was created`, false);
        ciphertext = stored.ciphertext;
      }
      generated.Plaintext?.fill(0);
    } else {
      ciphertext = stored.ciphertext;
    }
    if (!plaintext) {
      const storedKeyId = stored!.keyId;
      const decrypted = await withRetry(`Decrypt of the data key in ${where}`, deps, () =>
        deps.kms.send(
          new DecryptCommand({ CiphertextBlob: ciphertext, KeyId: storedKeyId, ...context }),
        ),
      );
      plaintext = decrypted.Plaintext!;
    }
    writeSecretFile(join(deps.dir, "data-key"), plaintext);
    writeSecretFile(join(deps.dir, "data-key.ciphertext"), ciphertext);
    plaintext.fill(0);
    files.push(join(deps.dir, "data-key"), join(deps.dir, "data-key.ciphertext"));
    dataKey = { keyId, reused };
    deps.log(
      `data key for ${keyId} written to ${join(deps.dir, "data-key")} (${reused ? "reused" : "new"})`,
    );
  }

  const byContainer = new Map<string, EncryptedEnv[]>();
  for (const e of plan.env)
    byContainer.set(e.container, [...(byContainer.get(e.container) ?? []), e]);
  for (const [container, entries] of byContainer) {
    const envDir = join(deps.dir, "env", container);
    mkdirSync(envDir, { recursive: true, mode: 0o700 });
    let envFile = "";
    for (const e of entries) {
      const decrypted = await withRetry(
        `Decrypt of env ${e.name} (container ${container})`,
        deps,
        () =>
          deps.kms.send(
            new DecryptCommand({ CiphertextBlob: Buffer.from(e.ciphertext, "base64"), ...context }),
          ),
      );
      const bytes = Buffer.from(decrypted.Plaintext!);
      const text = bytes.toString("utf8");
      if (bytes.includes(0) || Buffer.from(text, "utf8").compare(bytes) !== 0)
        throw new AgentError(
          `env ${e.name} (container ${container}) decrypts to bytes that are not UTF-8 text without NUL; an environment variable cannot hold them (the file ${join(envDir, e.name)} would)`,
          true,
        );
      writeSecretFile(join(envDir, e.name), bytes);
      files.push(join(envDir, e.name));
      envFile += shellAssignment(e.name, text);
      bytes.fill(0);
    }
    writeSecretFile(join(deps.dir, "env", `${container}.env`), envFile);
    files.push(join(deps.dir, "env", `${container}.env`));
    deps.log(`${entries.length} env value(s) for container ${container} written to ${envDir}`);
  }
  writeSecretFile(join(deps.dir, ".ready"), "");
  return { files, ...(dataKey && { dataKey }) };
}
