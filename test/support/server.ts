/**
 * Test helpers for running a real Keyhaven key service on loopback.
 *
 * - `spawnServer(opts)`   runs the built program (`node dist/src/main.js serve`) as a child
 *                         process on 127.0.0.1:0, waits for its "key service listening" line
 *                         and returns its URL, captured stdout/stderr, and stop()/kill().
 *                         dist/ is built by test/support/globalSetup.ts before the suite.
 * - `startInProcess(opts)` runs startKeyService() inside the test process (faster; use it
 *                         when no child process is needed), with logs captured in memory.
 * - `selfSignedCertificate(dir)` a TLS certificate and key for 127.0.0.1 and localhost.
 * - `writeCredentialsFile(dir)` writes a credentials file with one fresh admin credential.
 * - `kmsClient(server)`   an @aws-sdk/client-kms client pointed at a server, no retries.
 * - `signedFetch(server, …)` a raw POST / signed with @smithy/signature-v4 (the SDK's own
 *                         signer), for requests the SDK will not send (malformed JSON, …);
 *                         `presign(server, …)` signs once and sends on demand (timings).
 *
 * Every server gets its own data folder under os.tmpdir(); `stop()` leaves it in place so a
 * test can start another server on the same folder (restart tests) and removes nothing else.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { KMSClient, type KMSClientConfig } from "@aws-sdk/client-kms";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { Sha256 } from "./sha256.js";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Clock } from "../../src/time.js";
import { loadConfig, type ServeConfig } from "../../src/config/config.js";
import { ADMINISTRATOR_POLICY } from "../../src/kms/authz/keyPolicy.js";
import { createLogger } from "../../src/observability/logger.js";
import { startKeyService, type RunningKeyService } from "../../src/cmd/serve.js";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const MAIN_JS = join(REPO_ROOT, "dist", "src", "main.js");

/** How the built program is run: which Node, which main.js (test/support/node24.ts: others). */
export interface Program {
  readonly node: string;
  readonly main: string;
}
export const BUILT_PROGRAM: Program = { node: process.execPath, main: MAIN_JS };

export interface TestCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly principal: string;
}

/** Any running server a client can talk to. */
export interface ServerHandle {
  readonly url: string;
  readonly region: string;
  readonly account: string;
  readonly credentials: TestCredential;
  readonly dataDir: string;
  /** Everything the server wrote to stdout so far (logs, audit lines, first-start text). */
  output(): string;
}

export const tempDir = (prefix = "keyhaven-test-"): string => mkdtempSync(join(tmpdir(), prefix));

/** `<dir>/cert.pem` and `<dir>/key.pem`: a self-signed P-256 certificate for 127.0.0.1 and localhost (openssl). */
export function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

/**
 * Writes `<dir>/test-credentials.yaml` with one fresh admin credential; its administrator
 * policy is spelled out, since a credential without `policies` is allowed nothing.
 */
export function writeCredentialsFile(
  dir: string,
  account = "000000000000",
  /** More entries of the file's `credentials` list, as YAML text (each starting "  - "). */
  more = "",
): { path: string; credential: TestCredential } {
  const credential: TestCredential = {
    accessKeyId: `AKIATEST${randomBytes(6).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString("base64"),
    principal: `arn:aws:iam::${account}:user/test-admin`,
  };
  const path = join(dir, "test-credentials.yaml");
  writeFileSync(
    path,
    `credentials:\n  - accessKeyId: ${credential.accessKeyId}\n    secretAccessKey: "${credential.secretAccessKey}"\n    principal: ${credential.principal}\n    policies:\n      - ${ADMINISTRATOR_POLICY}\n${more}`,
    { mode: 0o600 },
  );
  return { path, credential };
}

export interface SpawnOptions {
  /** Data folder; a fresh temp folder by default. Reuse one to test restarts. */
  readonly dataDir?: string;
  /** Credentials file to pass with --credentials; one is written when absent, unless `firstStart`. */
  readonly credentials?: { path: string; credential: TestCredential };
  /** Start without --credentials (the first-start path); credentials are read back from stdout. */
  readonly firstStart?: boolean;
  readonly region?: string;
  readonly account?: string;
  /** Extra flags, e.g. ["--tls-cert", f, "--tls-key", k]. */
  readonly args?: readonly string[];
  /**
   * The whole command line after main.js instead of `serve` and the flags above (e.g. a
   * chart's rendered args); give `credentials` for the file it names.
   */
  readonly commandLine?: readonly string[];
  /** How long to wait for the listening line. */
  readonly timeoutMs?: number;
  /** Run the server under this umask (e.g. 0 to show that file modes do not depend on it). */
  readonly umask?: number;
  /** Another Node or build of the program (the Node 24 smoke test). */
  readonly program?: Program;
  /** Extra environment, e.g. P11_KIT_SERVER_ADDRESS for the pkcs11 root key. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface SpawnedServer extends ServerHandle {
  readonly process: ChildProcess;
  stderr(): string;
  /** SIGTERM (graceful shutdown); resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
}

const LISTENING = /"msg":"key service listening"/;

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Runs `node dist/src/main.js serve` on 127.0.0.1:0 and waits until it listens. */
export async function spawnServer(options: SpawnOptions = {}): Promise<SpawnedServer> {
  const dataDir = options.dataDir ?? tempDir();
  const region = options.region ?? "us-east-1";
  const account = options.account ?? "000000000000";
  const creds = options.firstStart
    ? undefined
    : (options.credentials ?? writeCredentialsFile(dataDir, account));
  const program = options.program ?? BUILT_PROGRAM;
  const args = options.commandLine
    ? [program.main, ...options.commandLine]
    : [
        program.main,
        "serve",
        "--data",
        dataDir,
        "--listen",
        "127.0.0.1:0",
        "--region",
        region,
        "--account",
        account,
        ...(creds ? ["--credentials", creds.path] : []),
        ...(options.args ?? []),
      ];
  // A clean environment: no KEYHAVEN_* or AWS_* leaking in from the developer's shell.
  const [command, argv] =
    options.umask === undefined
      ? [program.node, args]
      : [
          "/bin/sh",
          ["-c", `umask ${options.umask.toString(8)} && exec "$0" "$@"`, program.node, ...args],
        ];
  const child = spawn(command, argv, {
    cwd: tmpdir(),
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: dataDir,
      // One process unless a test asks for workers (the default is one per CPU).
      KEYHAVEN_WORKERS: "1",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`server did not start within ${options.timeoutMs ?? 15_000} ms`)),
      options.timeoutMs ?? 15_000,
    );
    const onData = () => {
      const line = stdout.split("\n").find((l) => LISTENING.test(l));
      if (!line) return;
      cleanup();
      resolve((JSON.parse(line) as { url: string }).url);
    };
    const onExit = (code: number | null) =>
      fail(new Error(`server exited with ${code} before listening:\n${stdout}\n${stderr}`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off("data", onData);
      child.off("exit", onExit);
      child.off("error", fail);
    };
    function fail(err: Error) {
      cleanup();
      child.kill("SIGKILL");
      reject(err);
    }
    child.stdout.on("data", onData);
    child.once("exit", onExit);
    child.once("error", fail);
  });

  const credential =
    creds?.credential ??
    (stdout.includes("export AWS_ACCESS_KEY_ID=")
      ? credentialsFromAnnouncement(stdout, account)
      : credentialsFromDataDir(dataDir));
  return {
    url,
    region,
    account,
    dataDir,
    credentials: credential,
    process: child,
    output: () => stdout,
    stderr: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      return exited(child);
    },
    async kill() {
      child.kill("SIGKILL");
      await exited(child);
    },
  };
}

/**
 * `count` `keyhaven serve` processes sharing one data folder and credentials, with `args`
 * (e.g. the kubernetes store's flags): started one after the other, so the first makes the
 * root key file the others share (in a pod it is a mounted Secret).
 */
export async function spawnReplicas(
  count: number,
  args: readonly string[],
  prefix = "keyhaven-replicas-",
): Promise<SpawnedServer[]> {
  const dataDir = tempDir(prefix);
  const credentials = writeCredentialsFile(dataDir);
  const replicas: SpawnedServer[] = [];
  for (let i = 0; i < count; i++)
    replicas.push(await spawnServer({ dataDir, credentials, args, timeoutMs: 60_000 }));
  return replicas;
}

/** Reads the `export AWS_...` lines a first start prints. */
export function credentialsFromAnnouncement(stdout: string, account: string): TestCredential {
  const value = (name: string) => {
    const m = new RegExp(`export ${name}=(\\S+)`).exec(stdout);
    if (!m) throw new Error(`no 'export ${name}=' line in the server's output:\n${stdout}`);
    return m[1]!;
  };
  return {
    accessKeyId: value("AWS_ACCESS_KEY_ID"),
    secretAccessKey: value("AWS_SECRET_ACCESS_KEY"),
    principal: `arn:aws:iam::${account}:user/admin`,
  };
}

/** The first credential of `<dataDir>/credentials.yaml` (what a first start generated). */
export function credentialsFromDataDir(dataDir: string): TestCredential {
  const file = parseYaml(readFileSync(join(dataDir, "credentials.yaml"), "utf8")) as {
    credentials: TestCredential[];
  };
  return file.credentials[0]!;
}

export interface InProcessOptions {
  readonly dataDir?: string;
  /** Credentials file to pass with --credentials; one is written when absent. */
  readonly credentials?: { path: string; credential: TestCredential };
  readonly region?: string;
  readonly account?: string;
  readonly clock?: Clock;
  readonly args?: readonly string[];
}

export interface InProcessServer extends ServerHandle {
  readonly running: RunningKeyService;
  stop(): Promise<void>;
}

/** startKeyService() in this process on 127.0.0.1:0, logs and audit lines captured by output(). */
export async function startInProcess(options: InProcessOptions = {}): Promise<InProcessServer> {
  const dataDir = options.dataDir ?? tempDir();
  const region = options.region ?? "us-east-1";
  const account = options.account ?? "000000000000";
  const creds = options.credentials ?? writeCredentialsFile(dataDir, account);
  const config = loadConfig(
    [
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--region",
      region,
      "--account",
      account,
      "--credentials",
      creds.path,
      ...(options.args ?? []),
    ],
    {},
  ) as ServeConfig;
  const { running, output } = await startCapturing(config, options.clock);
  return {
    url: running.url,
    region,
    account,
    dataDir,
    credentials: creds.credential,
    running,
    output,
    stop: () => running.stop(),
  };
}

/**
 * startKeyService() in this process with its logs, audit lines and first-start text
 * captured in memory: `output()` returns everything written so far.
 */
export async function startCapturing(
  config: ServeConfig,
  clock?: Clock,
): Promise<{ running: RunningKeyService; output: () => string }> {
  let captured = "";
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  const logger = createLogger("info", sink);
  const running = await startKeyService(config, {
    logger,
    audit: logger.child({ audit: true }),
    announce: (text) => (captured += text),
    ...(clock && { clock }),
  });
  return { running, output: () => captured };
}

/** An SDK client for `server`; retries are off so that every error surfaces as it was sent. */
export function kmsClient(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  overrides: Partial<KMSClientConfig> & { httpsAgent?: HttpsAgent } = {},
): KMSClient {
  const { httpsAgent, ...rest } = overrides;
  return new KMSClient({
    endpoint: server.url,
    region: server.region,
    credentials: {
      accessKeyId: server.credentials.accessKeyId,
      secretAccessKey: server.credentials.secretAccessKey,
    },
    maxAttempts: 1,
    ...(httpsAgent && { requestHandler: new NodeHttpHandler({ httpsAgent }) }),
    ...rest,
  });
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed body, or undefined if it is not JSON. */
  readonly json: { __type?: string; message?: string; [k: string]: unknown } | undefined;
}

export interface SignedFetchOptions {
  /** `X-Amz-Target` value; `TrentService.` is prepended unless it contains a dot. */
  readonly target?: string;
  readonly body: string | Uint8Array;
  /** Sign with these instead of the server's credentials (e.g. a wrong secret). */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly region?: string;
  readonly service?: string;
  readonly signingDate?: Date;
  /** Extra headers (signed). */
  readonly headers?: Record<string, string>;
  /** Send without any signature at all. */
  readonly unsigned?: boolean;
}

/**
 * A request signed once and sent by `send()` as often as wanted within the signature's
 * 5-minute window (for timing the server without the client's signing in the figure).
 */
export async function presign(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  options: SignedFetchOptions,
): Promise<{ send(): Promise<RawResponse> }> {
  const url = new URL(server.url);
  const body = typeof options.body === "string" ? Buffer.from(options.body) : options.body;
  const headers: Record<string, string> = {
    host: url.host,
    "content-type": "application/x-amz-json-1.1",
    ...(options.target !== undefined && {
      "x-amz-target": options.target.includes(".")
        ? options.target
        : `TrentService.${options.target}`,
    }),
    ...options.headers,
  };
  let sent = headers;
  if (!options.unsigned) {
    const signer = new SignatureV4({
      service: options.service ?? "kms",
      region: options.region ?? server.region,
      credentials: options.credentials ?? server.credentials,
      sha256: Sha256,
    });
    const signed = await signer.sign(
      {
        method: "POST",
        protocol: url.protocol,
        hostname: url.hostname,
        port: Number(url.port),
        path: "/",
        headers,
        body,
      },
      ...(options.signingDate ? [{ signingDate: options.signingDate }] : []),
    );
    sent = signed.headers;
  }
  // fetch() sets Host itself (it refuses a caller-supplied one); the value is the same.
  const fetchHeaders = Object.fromEntries(Object.entries(sent).filter(([k]) => k !== "host"));
  return {
    async send() {
      const response = await fetch(server.url, { method: "POST", headers: fetchHeaders, body });
      const text = await response.text();
      let json: RawResponse["json"];
      try {
        json = JSON.parse(text) as RawResponse["json"];
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
  };
}

/** POST / with a body the caller controls, signed exactly as the AWS SDK signs. */
export async function signedFetch(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  options: SignedFetchOptions,
): Promise<RawResponse> {
  return (await presign(server, options)).send();
}
