/**
 * Real AWS client programs as child processes, pointed at a test server:
 *
 * - `runCli(server, args)`   the `aws` CLI (v1), e.g. runCli(s, ["kms", "create-key"]).
 *                            `--output json` is added; stdout is parsed into `json` when it is JSON.
 * - `runBoto3(server, args)` test/clients/boto3_client.py with the same environment.
 *
 * Both get a clean environment with only PATH, a throwaway HOME (no ~/.aws leaking in),
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_KMS,
 * which is exactly how a user points these clients at Keyhaven.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT, tempDir, type ServerHandle } from "./server.js";

export interface ProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  readonly json: Record<string, unknown> | undefined;
}

export function clientEnv(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: tempDir("keyhaven-client-home-"),
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    AWS_DEFAULT_REGION: server.region,
    AWS_ENDPOINT_URL_KMS: server.url,
    AWS_MAX_ATTEMPTS: "1",
    AWS_PAGER: "",
    ...extra,
  };
}

function run(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024, ...(cwd && { cwd }) },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number")
          return reject(new Error(`${command} could not run: ${error.message}`));
        let json: ProcessResult["json"];
        try {
          json = JSON.parse(stdout) as ProcessResult["json"];
        } catch {
          json = undefined;
        }
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr, json });
      },
    );
  });
}

/** Runs `aws <args> --output json` against `server`. Pass `cwd` for fileb:// relative paths. */
export function runCli(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ProcessResult> {
  return run("aws", [...args, "--output", "json"], clientEnv(server, options.env), options.cwd);
}

export const BOTO3_CLIENT = join(REPO_ROOT, "test", "clients", "boto3_client.py");

/** Runs test/clients/boto3_client.py <args> against `server`; it prints one JSON document. */
export function runBoto3(
  server: Pick<ServerHandle, "url" | "region" | "credentials">,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<ProcessResult> {
  return run("python3", [BOTO3_CLIENT, ...args], clientEnv(server, options.env));
}

/**
 * Runs an ES module `script` with Node in the repository (so `@aws-sdk/*` resolves) and
 * exactly `env`: an unmodified SDK program, configured the way a pod's environment does.
 */
export function runSdkProgram(env: Record<string, string>, script: string): Promise<ProcessResult> {
  return run(process.execPath, ["--input-type=module", "-e", script], env, REPO_ROOT);
}
