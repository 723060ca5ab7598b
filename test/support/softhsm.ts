/**
 * A SoftHSM2 token behind a real `p11-kit server`, as the chart's sidecar runs it.
 *
 * `startSoftHsm()` makes a temp folder with its own softhsm2.conf (SOFTHSM2_CONF) and token
 * directory, initializes a token (`softhsm2-util --init-token`), and starts
 * `p11-kit server -f --provider <libsofthsm2.so> pkcs11:token=<label>` on a Unix socket in
 * that folder. Clients load `p11-kit-client.so` with P11_KIT_SERVER_ADDRESS (`env`), or the
 * SoftHSM2 module directly with SOFTHSM2_CONF (`directEnv`), on the same token files.
 *
 * The server forks a child per connection, so `killServer()` SIGKILLs the whole process
 * group (what the kubelet does to a sidecar container); `startServer()` brings it back.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { tempDir } from "./server.js";

const MULTIARCH = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";

/** Debian's paths (softhsm2, p11-kit-modules). */
function findModule(candidates: string[], pkg: string): string {
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${candidates.join(" or ")} not found; install Debian's ${pkg}`);
  return found;
}

export const SOFTHSM_MODULE = findModule(
  ["/usr/lib/softhsm/libsofthsm2.so", `/usr/lib/${MULTIARCH}/softhsm/libsofthsm2.so`],
  "softhsm2",
);
export const P11_KIT_CLIENT = findModule(
  [`/usr/lib/${MULTIARCH}/pkcs11/p11-kit-client.so`, "/usr/lib/pkcs11/p11-kit-client.so"],
  "p11-kit-modules",
);

/**
 * The mechanism a root key picks through the sidecar: p11-kit 0.24 (Debian bookworm) carries
 * no GCM parameters over its RPC, so only CKM_AES_ECB is offered and GCM is composed around
 * it; p11-kit 0.25 (trixie) forwards CKM_AES_GCM. Asked of the token in a child process, so
 * this process's own client of the module starts clean.
 */
export function sidecarMechanism(hsm: SoftHsm): "CKM_AES_GCM" | "CKM_AES_ECB" {
  const script = `
    const p = require(${JSON.stringify(createRequire(import.meta.url).resolve("pkcs11js"))});
    const lib = new p.PKCS11();
    lib.load(${JSON.stringify(P11_KIT_CLIENT)});
    lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === ${JSON.stringify(hsm.tokenLabel)});
    process.stdout.write(lib.C_GetMechanismList(slot).includes(p.CKM_AES_GCM) ? "CKM_AES_GCM" : "CKM_AES_ECB");
    lib.C_Finalize();`;
  const out = execFileSync(process.execPath, ["-e", script], {
    env: { ...process.env, ...hsm.env },
    encoding: "utf8",
  });
  if (out !== "CKM_AES_GCM" && out !== "CKM_AES_ECB")
    throw new Error(`probing the sidecar's mechanisms printed ${JSON.stringify(out)}`);
  return out;
}

export interface SoftHsm {
  readonly dir: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly socket: string;
  /** For a client of the sidecar: P11_KIT_SERVER_ADDRESS. */
  readonly env: Readonly<Record<string, string>>;
  /** For loading SOFTHSM_MODULE directly on the same token: SOFTHSM2_CONF. */
  readonly directEnv: Readonly<Record<string, string>>;
  readonly serverPid: () => number | undefined;
  startServer(): Promise<void>;
  killServer(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSoftHsm(tokenLabel = "keyhaven"): Promise<SoftHsm> {
  const dir = tempDir("keyhaven-softhsm-");
  const conf = join(dir, "softhsm2.conf");
  mkdirSync(join(dir, "tokens"));
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const pin = randomBytes(6).toString("hex");
  const directEnv = { SOFTHSM2_CONF: conf };
  execFileSync(
    "softhsm2-util",
    ["--init-token", "--free", "--label", tokenLabel, "--so-pin", `so-${pin}`, "--pin", pin],
    { env: { ...process.env, ...directEnv }, stdio: "pipe" },
  );
  const socket = join(dir, "p11-kit.sock");
  let server: ChildProcess | undefined;

  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once("exit", () => resolve()));

  async function startServer(): Promise<void> {
    const child = spawn(
      "p11-kit",
      ["server", "-f", "-n", socket, "--provider", SOFTHSM_MODULE, `pkcs11:token=${tokenLabel}`],
      { env: { ...process.env, ...directEnv }, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    server = child;
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
    // -f prints the P11_KIT_SERVER_ADDRESS line once the socket listens.
    const deadline = Date.now() + 10_000;
    while (!(output.includes("P11_KIT_SERVER_ADDRESS") && existsSync(socket))) {
      if (child.exitCode !== null) throw new Error(`p11-kit server exited: ${output}`);
      if (Date.now() > deadline) throw new Error(`p11-kit server did not listen: ${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function killServer(): Promise<void> {
    const child = server;
    server = undefined;
    if (!child?.pid) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    await exited(child);
  }

  await startServer();
  return {
    dir,
    tokenLabel,
    pin,
    socket,
    env: { P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` },
    directEnv,
    serverPid: () => server?.pid,
    startServer,
    killServer,
    stop: killServer,
  };
}
