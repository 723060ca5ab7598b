/**
 * Sign throughput through the full HTTP path (SigV4, validation, authorization, audit
 * line) at 50 keep-alive connections, as a ratio to raw node:crypto signing with the
 * same key (the service's own KeyObject) measured in the same process, same run,
 * interleaved raw, HTTP, raw, HTTP … with the median ratio reported. The CPU ratio
 * (raw CPU µs per signature / server CPU µs per Sign request) is printed beside it:
 * it moves far less than throughput when the machine is shared.
 *
 *   npm run build && node bench/sign.mjs [--rounds 5] [--duration 5] [--warmup 2]
 *                                        [--connections 50] [--scenarios ecdsa,rsa-pss]
 *
 * Numbers are information, never a pass/fail gate (docs/asymmetric-and-hmac.md).
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { median, runLoad, formatRun } from "./lib/harness.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "50" },
    scenarios: { type: "string", default: "ecdsa,rsa-pss" },
    profile: { type: "string" },
  },
});
const rounds = Number(args.rounds);
const seconds = Number(args.duration);
const connections = Number(args.connections);

const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHMARKSIGN001",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-sign-"));

// The subject in its own process, with a small request/response protocol over IPC.
const child = fork(
  join(import.meta.dirname, "sign-server.mjs"),
  [JSON.stringify({ dataDir, credential, region, account })],
  {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : [],
  },
);
const inbox = [];
let waiter;
child.on("message", (m) => (waiter ? (waiter(m), (waiter = undefined)) : inbox.push(m)));
const receive = (field) =>
  new Promise((resolve, reject) => {
    const take = (m) =>
      m?.error
        ? reject(new Error(m.error))
        : field in m
          ? resolve(m)
          : reject(new Error(`unexpected ${JSON.stringify(m)}`));
    if (inbox.length) take(inbox.shift());
    else waiter = take;
  });
const { ready: url } = await receive("ready");
const target = {
  name: "keyhaven",
  url,
  region,
  credential,
  async cpuMicros() {
    child.send({ cmd: "cpu" });
    const { cpu } = await receive("cpu");
    return cpu.user + cpu.system;
  },
};

async function createKey(KeySpec) {
  const { status, json } = await callKms(target, "CreateKey", { KeySpec, KeyUsage: "SIGN_VERIFY" });
  if (status !== 200) throw new Error(`CreateKey ${KeySpec}: ${JSON.stringify(json)}`);
  return json.KeyMetadata.KeyId;
}

const message = randomBytes(256);
const all = {
  ecdsa: {
    name: "Sign ECDSA_SHA_256 (ECC_NIST_P256)",
    keySpec: "ECC_NIST_P256",
    algorithm: "ECDSA_SHA_256",
  },
  "rsa-pss": {
    name: "Sign RSASSA_PSS_SHA_256 (RSA_2048)",
    keySpec: "RSA_2048",
    algorithm: "RSASSA_PSS_SHA_256",
  },
};

async function raw(keyId, algorithm, ms) {
  child.send({ cmd: "raw", keyId, algorithm, message: message.toString("base64"), ms });
  const { raw } = await receive("raw");
  return { rate: raw.signatures / raw.seconds, cpuPerSignature: raw.cpuMicros / raw.signatures };
}

console.log(
  `keyhaven sign bench ${new Date().toISOString()}: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ` +
    `${connections} connections, ${rounds} rounds × ${seconds}s`,
);
const results = [];
try {
  for (const name of args.scenarios.split(",")) {
    const scenario = all[name.trim()];
    if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(all)}`);
    const keyId = await createKey(scenario.keySpec);
    const input = {
      KeyId: keyId,
      Message: message.toString("base64"),
      SigningAlgorithm: scenario.algorithm,
    };
    const check = await callKms(target, "Sign", input);
    if (check.status !== 200) throw new Error(`Sign failed: ${JSON.stringify(check.json)}`);
    const load = async (s) =>
      runLoad(target, [await signKmsRequest(target, "Sign", input)], {
        connections,
        durationSeconds: s,
      });
    await raw(keyId, scenario.algorithm, Number(args.warmup) * 1000);
    await load(Number(args.warmup));
    const ratios = [];
    const raws = [];
    const runs = [];
    const cpuRatios = [];
    const rawCpu = [];
    for (let round = 1; round <= rounds; round++) {
      const { rate: rawRate, cpuPerSignature } = await raw(
        keyId,
        scenario.algorithm,
        seconds * 1000,
      );
      const run = await load(seconds);
      raws.push(rawRate);
      rawCpu.push(cpuPerSignature);
      runs.push(run);
      ratios.push(run.requestsPerSecond / rawRate);
      cpuRatios.push(cpuPerSignature / run.cpuMicrosPerRequest);
      console.log(
        `  ${scenario.name} round ${round}/${rounds}: raw ${rawRate.toFixed(0)} sig/s, ${cpuPerSignature.toFixed(1)} µs CPU/sig | http ${formatRun(run)} | ratio ${(run.requestsPerSecond / rawRate).toFixed(2)}`,
      );
    }
    results.push({
      scenario: scenario.name,
      raw: median(raws),
      http: median(runs.map((r) => r.requestsPerSecond)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      cpu: median(runs.map((r) => r.cpuMicrosPerRequest)),
      errors: runs.reduce((n, r) => n + r.errors, 0),
      ratio: median(ratios),
      rawCpu: median(rawCpu),
      cpuRatio: median(cpuRatios),
    });
  }
} finally {
  child.send({ cmd: "stop" });
  await once(child, "exit");
  rmSync(dataDir, { recursive: true, force: true });
}

console.log("");
console.log(
  "| scenario | raw node:crypto sig/s | HTTP Sign req/s | p50 ms | p99 ms | raw CPU µs/sig | server CPU µs/req | errors | throughput ratio | CPU ratio |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results)
  console.log(
    `| ${r.scenario} | ${r.raw.toFixed(0)} | ${r.http.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rawCpu.toFixed(1)} | ${Number.isFinite(r.cpu) ? r.cpu.toFixed(0) : "n/a"} | ${r.errors} | ${r.ratio.toFixed(2)} | ${r.cpuRatio.toFixed(2)} |`,
  );
if (results.some((r) => r.errors > 0))
  console.log("\nWARNING: some requests failed; the figures above are not valid.");
