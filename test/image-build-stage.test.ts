/**
 * The image's build stage without a container engine: scripts/image-build-stage.sh (the
 * very script the Dockerfile runs) on a copy of the build context, then the assembled
 * runtime file system checked: production dependencies only, no shell, and — when the
 * test runs as root, as CI does — `keyhaven serve` started inside it with chroot as the
 * image's numeric user, answering /healthz. scripts/image-smoke.sh does the same with
 * a real podman image; it stays out of CI for its build time (docs/install.md).
 */
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  linkSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./chart/support.js";
import { startSoftHsm } from "./support/softhsm.js";

const UID = 10001;
const isRoot = process.getuid?.() === 0;
let work: string;
let out: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "keyhaven-image-build-"));
  const context = join(work, "context");
  // The build context as .dockerignore lets it through, plus the installed dependencies
  // (what `npm ci` in the Dockerfile would have produced; copied to stay offline).
  for (const f of [
    ".npmrc",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "tsconfig.build.json",
  ])
    cpSync(join(ROOT, f), join(context, f));
  cpSync(join(ROOT, "scripts/image-build-stage.sh"), join(context, "scripts/image-build-stage.sh"));
  mkdirSync(join(context, "node_modules"));
  cpSync(join(ROOT, "src"), join(context, "src"), {
    recursive: true,
    filter: (p) => !p.endsWith(".test.ts"),
  });
  // A real copy even when node_modules is a link: the build stage prunes it in place.
  execFileSync("cp", [
    "-a",
    `${realpathSync(join(ROOT, "node_modules"))}/.`,
    join(context, "node_modules"),
  ]);
  out = join(work, "out");
  execFileSync(
    "bash",
    [join(context, "scripts/image-build-stage.sh"), context, out, process.execPath],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
}, 180_000);

/** The image's file system in a folder (made once), for chroot. */
function imageDir(): string {
  const image = join(work, "image");
  if (existsSync(image)) return image;
  cpSync(join(out, "rootfs"), image, { recursive: true, verbatimSymlinks: true });
  cpSync(join(out, "app"), join(image, "app"), { recursive: true, verbatimSymlinks: true });
  cpSync(join(out, "state"), join(image, "var/lib"), { recursive: true });
  chownSync(join(image, "var/lib/keyhaven"), UID, UID);
  // What every container runtime provides in /dev: serve --workers forks its workers with
  // stdin from /dev/null.
  mkdirSync(join(image, "dev"), { recursive: true });
  execFileSync("mknod", ["-m", "666", join(image, "dev/null"), "c", "1", "3"]);
  return image;
}

const chroot = existsSync("/usr/sbin/chroot") ? "/usr/sbin/chroot" : "chroot";

describe("image build stage", () => {
  it("keeps production dependencies only, and no tests or native build leftovers", () => {
    const modules = readdirSync(join(out, "app/node_modules"));
    for (const prod of ["pino", "zod", "yaml", "better-sqlite3", "@aws-sdk"])
      expect(modules).toContain(prod);
    for (const dev of [
      "typescript",
      "vitest",
      "eslint",
      "prettier",
      "fast-check",
      "kubernetes-models",
      "autocannon",
    ])
      expect(modules).not.toContain(dev);
    const sqlite = join(out, "app/node_modules/better-sqlite3");
    expect(readdirSync(join(sqlite, "build/Release"))).toEqual(["better_sqlite3.node"]);
    expect(existsSync(join(sqlite, "deps"))).toBe(false);
    const compiled = execFileSync("find", [join(out, "app/dist"), "-name", "*.test.js"], {
      encoding: "utf8",
    });
    expect(compiled.trim()).toBe("");
    const version = execFileSync(process.execPath, [join(out, "app/dist/src/main.js"), "version"], {
      encoding: "utf8",
    });
    expect(version).toMatch(/^keyhaven \d+\.\d+\.\d+/);
  });

  it("assembles a runtime file system with node and its libraries, a numeric user, and no shell", () => {
    const rootfs = join(out, "rootfs");
    expect(existsSync(join(rootfs, "usr/local/bin/node"))).toBe(true);
    for (const tool of ["bin/sh", "bin/bash", "usr/bin/env", "usr/bin/apt-get", "bin/ls"])
      expect(existsSync(join(rootfs, tool)), tool).toBe(false);
    expect(readFileSync(join(rootfs, "etc/passwd"), "utf8")).toContain(`keyhaven:x:${UID}:${UID}:`);
    const libs = execFileSync("find", [rootfs, "-name", "*.so*"], { encoding: "utf8" });
    expect(libs).toMatch(/libc\.so\.6/);
    expect(libs).toMatch(/libstdc\+\+\.so/);
    // p11-kit-client.so, for the chart's HSM sidecar, and what it links.
    expect(existsSync(join(rootfs, "usr/lib/keyhaven/pkcs11/p11-kit-client.so"))).toBe(true);
    expect(libs).toMatch(/libffi\.so/);
  });

  it.runIf(isRoot)(
    "serves /healthz from inside that file system as uid 10001 (chroot, like the image)",
    async () => {
      const image = imageDir();
      const child = spawn(
        chroot,
        [
          `--userspec=${UID}:${UID}`,
          image,
          "/usr/local/bin/node",
          "/app/dist/src/main.js",
          "serve",
          "--listen",
          "127.0.0.1:0",
          "--data",
          "/var/lib/keyhaven",
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
          env: { NODE_ENV: "production", PATH: "/usr/local/bin" },
        },
      );
      try {
        let stdout = "";
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const url = await new Promise<string>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) => {
            stdout += d.toString();
            const m =
              /"msg":"key service listening"/.test(stdout) &&
              /"url":"(http:\/\/[^"]+)"/.exec(stdout);
            if (m) resolve(m[1]!);
          });
          child.once("error", reject);
          child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
        });
        const health = await fetch(`${url}/healthz`);
        expect(health.status).toBe(200);
        expect(await health.text()).toBe("ok");
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(UID));
      } finally {
        child.kill("SIGTERM");
        await new Promise((resolve) => child.once("exit", resolve));
      }
    },
    60_000,
  );

  it.runIf(isRoot)(
    "loads its p11-kit-client.so inside that file system as uid 10001 and reaches a token through a p11-kit server socket",
    async () => {
      const image = imageDir();
      const hsm = await startSoftHsm();
      try {
        // The sidecar's socket inside the file system (a hard link to the same socket);
        // in the pod both containers run as the same user, here the server runs as root.
        mkdirSync(join(image, "run/keyhaven-hsm"), { recursive: true });
        linkSync(hsm.socket, join(image, "run/keyhaven-hsm/p11-kit.sock"));
        chmodSync(hsm.socket, 0o666);
        const script = `
          const p = require("/app/node_modules/pkcs11js");
          const lib = new p.PKCS11();
          lib.load("/usr/lib/keyhaven/pkcs11/p11-kit-client.so");
          lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
          const labels = lib.C_GetSlotList(true).map((s) => lib.C_GetTokenInfo(s).label.trim());
          lib.C_Finalize();
          process.stdout.write(JSON.stringify(labels));`;
        const labels = execFileSync(
          chroot,
          [`--userspec=${UID}:${UID}`, image, "/usr/local/bin/node", "-e", script],
          {
            encoding: "utf8",
            env: {
              PATH: "/usr/local/bin",
              P11_KIT_SERVER_ADDRESS: "unix:path=/run/keyhaven-hsm/p11-kit.sock",
            },
          },
        );
        expect(JSON.parse(labels)).toEqual([hsm.tokenLabel]);
      } finally {
        await hsm.stop();
      }
    },
    60_000,
  );
});
