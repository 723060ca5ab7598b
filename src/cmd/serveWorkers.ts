/**
 * `keyhaven serve --workers N`: N processes (node:cluster) share the listening socket, one
 * event loop each, on one store.
 *
 * The primary does the one-time work (data folder, root key, schema migrations, generated
 * credentials: openDataFolder) before forking, then only supervises: it forks the workers,
 * starts another when one dies (after a back-off that doubles while workers keep dying
 * young), and on SIGTERM or SIGINT stops them all, each draining its connections.
 *
 * Exactly one worker at a time runs the lifecycle timers and the --seed reconcilers: the
 * primary forks a replacement for it only after it exited, so two never overlap (and a
 * rotation is a compare-and-set in the store besides). The others serve.
 *
 * One output stream: workers write their stdout (logs, and audit lines without --audit-log)
 * to a pipe of their own; the primary, the only writer of the real stdout, copies whole
 * lines from each pipe, so lines of different workers never interleave or tear however
 * long they are. With --audit-log every worker appends whole lines to the file itself
 * (O_APPEND, one write(2) each: never interleaved).
 */
import cluster, { type Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import type { ServeConfig } from "../config/config.js";
import { createLogger } from "../observability/logger.js";
import { SyncDestination } from "../observability/syncDestination.js";
import { adminInstructions, openDataFolder, readTlsFiles, startKeyService } from "./serve.js";
import { untilStopped } from "./signals.js";
import { StartupError } from "./startupError.js";

/**
 * The primary's answer to a worker's request for its role (asked once it listens for the
 * answer: a message that arrives before a listener is dropped).
 */
interface RoleMessage {
  readonly keyhavenRole: { readonly runsTimers: boolean };
}
const isRoleMessage = (m: unknown): m is RoleMessage =>
  typeof (m as RoleMessage | undefined)?.keyhavenRole?.runsTimers === "boolean";
/** Back-off before restarting a worker: doubles per young death, up to the cap. */
const FIRST_RESTART_MS = 100;
const MAX_RESTART_MS = 10_000;
/** A worker that lived this long resets the back-off. */
const HEALTHY_AFTER_MS = 30_000;

/**
 * The CPUs this process may use: the cgroup's CPU quota (cgroup v2 cpu.max, else v1
 * cfs_quota/cfs_period; a pod's resources.limits.cpu), rounded down, at least 1, at most
 * os.availableParallelism(); without a quota, os.availableParallelism().
 */
export function availableCpus(read: (path: string) => string = readText): number {
  const cpus = availableParallelism();
  const quota = cgroupQuota(read);
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, Math.floor(quota)));
}

function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/** CPUs of the quota, or undefined when there is none (or no cgroup file to say). */
export function cgroupQuota(read: (path: string) => string): number | undefined {
  const ratio = (quota: number, period: number) =>
    Number.isFinite(quota) && quota > 0 && period > 0 ? quota / period : undefined;
  try {
    const [quota, period] = read("/sys/fs/cgroup/cpu.max").trim().split(/\s+/);
    return quota === "max" ? undefined : ratio(Number(quota), Number(period));
  } catch {
    // not cgroup v2
  }
  try {
    return ratio(
      Number(read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")),
      Number(read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
    );
  } catch {
    return undefined;
  }
}

/**
 * `keyhaven serve` as a process: runs until SIGTERM or SIGINT. With more than one worker
 * (--workers, by default the CPUs available) this process is the primary of a node:cluster,
 * and each worker runs runServe again, which finds itself a worker.
 */
export async function runServe(config: ServeConfig): Promise<number> {
  if (cluster.isWorker) return runWorker(config);
  const count = config.workers ?? availableCpus();
  if (count > 1) return runPrimary(config, count);
  const running = await startKeyService(config);
  await untilStopped();
  await running.stop();
  return 0;
}

/** A worker: the key service on the shared socket, until SIGTERM or SIGINT. */
async function runWorker(config: ServeConfig): Promise<number> {
  const role = await new Promise<RoleMessage["keyhavenRole"]>((resolve) => {
    const onMessage = (message: unknown) => {
      if (!isRoleMessage(message)) return;
      process.off("message", onMessage);
      resolve(message.keyhavenRole);
    };
    process.on("message", onMessage);
    process.send!({ keyhavenAskRole: true });
  });
  try {
    const running = await startKeyService(config, { worker: role });
    await untilStopped();
    await running.stop();
    return 0;
  } finally {
    // The IPC channel to the primary would keep the process alive.
    cluster.worker?.disconnect();
  }
}

/** The primary: one-time work, then forks and supervises `count` workers. */
async function runPrimary(config: ServeConfig, count: number): Promise<number> {
  const out = new SyncDestination(1, { strict: false });
  const logger = createLogger(config.logLevel, out);
  const folder = await openDataFolder(config, logger);
  await folder.close();
  // What a worker would refuse at start, refused once here.
  if (config.tls) readTlsFiles(config.tls);
  await assertCanListen(config.listen);
  const supervisor = new Supervisor(config, count, logger, out);
  const started = await supervisor.start();
  if (started !== 0) return started;
  if (folder.createdAdmin)
    out.write(adminInstructions(folder.createdAdmin, config, supervisor.url));
  await untilStopped();
  await supervisor.stop();
  logger.info("key service stopped");
  return 0;
}

/**
 * Listens once on the address and closes: a taken port or a bad address is the primary's
 * one StartupError (as a single process says it), not one from each worker.
 */
async function assertCanListen({ host, port }: ServeConfig["listen"]): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", (err) =>
      reject(new StartupError(`cannot listen on ${host}:${port}: ${err.message}`)),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

class Supervisor {
  readonly #config: ServeConfig;
  readonly #count: number;
  readonly #logger: Logger;
  readonly #out: SyncDestination;
  readonly #closed = new Set<Promise<void>>();
  #stopping = false;
  #everListened = false;
  #youngDeaths = 0;
  #url = "";
  #failed!: (code: number) => void;
  /** Resolves with an exit code when workers cannot start at all. */
  readonly failed = new Promise<number>((resolve) => (this.#failed = resolve));

  constructor(config: ServeConfig, count: number, logger: Logger, out: SyncDestination) {
    this.#config = config;
    this.#count = count;
    this.#logger = logger;
    this.#out = out;
  }

  get url(): string {
    return this.#url;
  }

  /** Forks every worker; resolves with 0 once all listen, or an exit code if one could not start. */
  async start(): Promise<number> {
    cluster.setupPrimary({ stdio: ["ignore", "pipe", "inherit", "ipc"] });
    const listening = new Promise<void>((resolve) => {
      let ready = 0;
      const onListening = (_worker: Worker, address: { address: string; port: number }) => {
        if (this.#url === "") {
          const host = address.address.includes(":") ? `[${address.address}]` : address.address;
          this.#url = `${this.#config.tls ? "https" : "http"}://${host}:${address.port}`;
        }
        if (++ready < this.#count) return;
        cluster.off("listening", onListening);
        this.#everListened = true;
        resolve();
      };
      cluster.on("listening", onListening);
    });
    for (let i = 0; i < this.#count; i++) this.#fork(i === 0);
    const code = await Promise.race([listening.then(() => 0), this.failed]);
    if (code !== 0) {
      await this.stop();
      return code;
    }
    this.#logger.info(
      {
        url: this.#url,
        workers: this.#count,
        region: this.#config.region,
        account: this.#config.account,
      },
      "key service listening",
    );
    return 0;
  }

  #fork(runsTimers: boolean): void {
    const worker = cluster.fork();
    worker.on("message", (message: { keyhavenAskRole?: unknown }) => {
      if (message.keyhavenAskRole === true)
        worker.send({ keyhavenRole: { runsTimers } } satisfies RoleMessage);
    });
    const bornAt = Date.now();
    this.#closed.add(this.#relay(worker));
    worker.once("exit", (code, signal) => {
      if (this.#stopping) return;
      if (!this.#everListened) {
        // A worker that cannot start (its error is on stderr) would fail again: give up.
        this.#failed(code || 1);
        return;
      }
      this.#youngDeaths = Date.now() - bornAt >= HEALTHY_AFTER_MS ? 0 : this.#youngDeaths + 1;
      const delay = Math.min(FIRST_RESTART_MS * 2 ** this.#youngDeaths, MAX_RESTART_MS);
      this.#logger.warn(
        { pid: worker.process.pid, code, signal, runsTimers, restartInMs: delay },
        "worker exited; starting another",
      );
      setTimeout(() => {
        if (!this.#stopping) this.#fork(runsTimers);
      }, delay);
    });
  }

  /** Copies the worker's stdout to ours, whole lines only; resolves when its pipe closes. */
  #relay(worker: Worker): Promise<void> {
    const stdout = worker.process.stdout!;
    let rest: Buffer = Buffer.alloc(0);
    stdout.on("data", (chunk: Buffer) => {
      const pending = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
      const end = pending.lastIndexOf(10);
      if (end === -1) {
        rest = pending;
        return;
      }
      this.#out.write(pending.toString("utf8", 0, end + 1));
      rest = pending.subarray(end + 1);
    });
    return new Promise((resolve) => {
      stdout.once("close", () => {
        // An unfinished line of a worker that died mid-write: no request was answered after it.
        if (rest.length > 0)
          this.#logger.warn(
            { pid: worker.process.pid, bytes: rest.length },
            "dropped an unfinished output line of a worker that died",
          );
        resolve();
      });
    });
  }

  /** SIGTERM to every worker (each drains its connections), then waits for their output. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const worker of Object.values(cluster.workers ?? {}))
      if (worker && !worker.isDead()) worker.process.kill("SIGTERM");
    await Promise.all(this.#closed);
  }
}
