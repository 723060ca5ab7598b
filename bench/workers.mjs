/**
 * `keyhaven serve --workers N`: Encrypt 1 KiB against the real program (primary and
 * workers, SigV4, key policy, audit lines to --audit-log) with --workers 1 and --workers 2,
 * and the bare echo server as the baseline, in the same run (harness.mjs's compare: A B A B).
 * The server's CPU is the whole process tree's (primary and workers, from /proc), so the
 * CPU µs per request include the primary's share of handing out connections.
 *
 *   node bench/workers.mjs [--workers 1,2] [--rounds 2] [--duration 3] [--connections 32]
 *
 * Run `npm run build` first. Information only (docs/benchmarks.md, "Workers").
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { compare, formatSummaries } from "./lib/harness.mjs";
import { benchCredential, benchIdentity } from "./lib/keyService.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    workers: { type: "string", default: "1,2" },
    rounds: { type: "string", default: "2" },
    duration: { type: "string", default: "3" },
    connections: { type: "string", default: "32" },
  },
});
const here = import.meta.dirname;
const { region, account, credential } = benchIdentity();
const tempDir = mkdtempSync(join(tmpdir(), "keyhaven-workers-"));
const TICK_MICROS = 1e6 / 100; // USER_HZ: /proc/PID/stat counts 1/100 s

/** utime + stime of a process and its descendants, in µs. */
function treeCpuMicros(pid) {
  let ticks = 0;
  const walk = (p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      for (const task of readdirSync(`/proc/${p}/task`))
        for (const child of readFileSync(`/proc/${p}/task/${task}/children`, "utf8").split(" "))
          if (child.trim()) walk(child.trim());
    } catch {
      // gone
    }
  };
  walk(pid);
  return ticks * TICK_MICROS;
}

/** `node dist/src/main.js serve --workers N` on a fresh data folder, with one key. */
async function startKeyhaven(workers) {
  const dataDir = join(tempDir, `w${workers}`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const credentials = join(dataDir, "credentials.yaml");
  writeFileSync(credentials, stringify({ credentials: [benchCredential(credential, account)] }), {
    mode: 0o600,
  });
  const child = spawn(
    process.execPath,
    [
      join(here, "../dist/src/main.js"),
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--credentials",
      credentials,
      "--audit-log",
      join(dataDir, "audit.log"),
      "--workers",
      String(workers),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s) => {
      out += s;
      const line = out.split("\n").find((l) => l.includes('"key service listening"'));
      if (line) resolve(JSON.parse(line).url);
    });
    child.once("exit", (code) => reject(new Error(`serve --workers ${workers} exited ${code}`)));
  });
  const target = {
    name: `keyhaven --workers ${workers}`,
    url,
    region,
    credential,
    cpuMicros: async () => treeCpuMicros(child.pid),
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
  const created = await callKms(target, "CreateKey", {});
  if (created.status !== 200) throw new Error(`CreateKey: ${JSON.stringify(created.json)}`);
  target.keyId = created.json.KeyMetadata.KeyId;
  return target;
}

const plaintext = randomBytes(1024).toString("base64");
const encrypt = {
  name: "Encrypt 1 KiB",
  async prepare(target) {
    if (!target.keyId) return [{ method: "POST", path: "/", body: "{}" }];
    // One signed request per second of the run's window: SigV4 allows 5 minutes of skew.
    return [await signKmsRequest(target, "Encrypt", { KeyId: target.keyId, Plaintext: plaintext })];
  },
};

console.log(
  `workers bench: load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const echo = await spawnServer(join(here, "servers/echo.mjs"), {}, { name: "echo" });
const subjects = [];
try {
  for (const n of args.workers.split(",").map(Number)) subjects.push(await startKeyhaven(n));
  const summaries = await compare({
    baseline: echo,
    subjects,
    scenarios: [encrypt],
    rounds: Number(args.rounds),
    durationSeconds: Number(args.duration),
    warmupSeconds: 1,
    connections: Number(args.connections),
    log: (line) => console.log(line),
  });
  console.log(formatSummaries(summaries, { baselineName: "echo" }));
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
} finally {
  for (const s of subjects) await s.stop();
  await echo.stop();
  rmSync(tempDir, { recursive: true, force: true });
}
