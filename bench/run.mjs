/**
 * `npm run bench`: the key service's hot paths against a bare Node JSON echo server,
 * measured in the same run, interleaved, with the median ratio reported.
 *
 *   node bench/run.mjs [--rounds 5] [--duration 5] [--warmup 2] [--connections 50]
 *                      [--scenarios Encrypt,Decrypt,GenerateDataKey] [--rate R] [--json FILE] [--profile DIR]
 *                      [--dist DIST] [--compare NAME=DIST ...] [--node-arg NAME=FLAG ...]
 *                      [--admission-cluster]
 *                      [--controller-cluster]
 *
 * --rate R offers R requests/s in all, evenly spaced, instead of saturating the server (a
 * fixed load both servers can carry, so p50/p99 compare latency rather than queueing; see
 * pacedLoad in lib/harness.mjs).
 * --profile DIR runs the key service under `node --cpu-prof` and leaves the
 * .cpuprofile in DIR (open it in Chrome DevTools or speedscope; or
 * `node bench/profile-summary.mjs FILE`). --dist DIST runs the key service from
 * another build than ./dist; --compare NAME=DIST also measures the key service built
 * into another dist/ folder (e.g. an older commit, one with src/bench/), in the same rounds. --node-arg
 * NAME=FLAG passes a Node flag to one of them (e.g. semi=--max-semi-space-size=64).
 * --admission-cluster also runs bench/admission-cluster.mjs afterwards: Pod creates on
 * the real API server with and without the webhook (needs ../shared/kubernetes).
 * --controller-cluster also runs bench/controller-cluster.mjs afterwards: 1,000 KmsKeys
 * to Ready on the real API server, the fake and a bare CreateKey loop (needs ../shared/kubernetes).
 * Numbers are information, never a pass/fail gate; see docs/benchmarks.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { compare, formatSummaries } from "./lib/harness.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "50" },
    rate: { type: "string", default: "0" },
    scenarios: { type: "string", default: "Encrypt,Decrypt,GenerateDataKey" },
    json: { type: "string" },
    profile: { type: "string" },
    dist: { type: "string" },
    compare: { type: "string", multiple: true, default: [] },
    "node-arg": { type: "string", multiple: true, default: [] },
    "admission-cluster": { type: "boolean", default: false },
    "controller-cluster": { type: "boolean", default: false },
  },
});

const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHMARK0000001",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const here = import.meta.dirname;
const tempDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-"));

const plaintext = randomBytes(1024).toString("base64");
const echo = await spawnServer(join(here, "servers/echo.mjs"), {}, { name: "echo" });
const builds = [
  ["keyhaven", args.dist],
  ...args.compare.map((spec) => {
    const eq = spec.indexOf("=");
    if (eq < 1) throw new Error(`--compare takes NAME=DIST, not ${spec}`);
    return [spec.slice(0, eq), spec.slice(eq + 1)];
  }),
];
/** Node flags for one key service, from --node-arg NAME=FLAG (NAME: keyhaven or a --compare name). */
function nodeArgs(name) {
  return args["node-arg"]
    .filter((spec) => spec.startsWith(`${name}=`))
    .map((spec) => spec.slice(name.length + 1));
}
const subjects = [];
for (const [name, dist] of builds) {
  const dataDir = join(tempDir, name);
  const server = await spawnServer(
    join(here, "servers/keyService.mjs"),
    { dataDir, credential, region, account, ...(dist && { dist }) },
    {
      name,
      execArgv: [
        ...nodeArgs(name),
        ...(args.profile ? ["--cpu-prof", `--cpu-prof-dir=${resolve(args.profile, name)}`] : []),
      ],
    },
  );
  subjects.push({ ...server, region, credential });
}
// Each key service gets its own key; the echo server is sent the first one's requests.
for (const target of subjects) {
  const created = await callKms(target, "CreateKey", { Description: "bench" });
  if (created.status !== 200)
    throw new Error(`${target.name}: CreateKey failed: ${JSON.stringify(created.json)}`);
  target.keyId = created.json.KeyMetadata.KeyId;
  const sealed = await callKms(target, "Encrypt", { KeyId: target.keyId, Plaintext: plaintext });
  if (sealed.status !== 200)
    throw new Error(`${target.name}: Encrypt failed: ${JSON.stringify(sealed.json)}`);
  target.ciphertext = sealed.json.CiphertextBlob;
}
const echoTarget = {
  ...echo,
  region,
  credential,
  keyId: subjects[0].keyId,
  ciphertext: subjects[0].ciphertext,
};

/** A scenario: one KMS call replayed as fixed, pre-signed bytes; `input(target)` is its body. */
function kmsScenario(name, operation, input, expectFields) {
  return {
    name,
    async prepare(target) {
      return [await signKmsRequest(target, operation, input(target))];
    },
    async check(target) {
      const { status, json } = await callKms(target, operation, input(target));
      const missing = expectFields.filter((f) => !(f in json));
      if (status !== 200 || missing.length > 0)
        throw new Error(`${name}: sanity call failed: ${status} ${JSON.stringify(json)}`);
    },
  };
}

const allScenarios = {
  Encrypt: kmsScenario(
    "Encrypt 1 KiB",
    "Encrypt",
    (target) => ({ KeyId: target.keyId, Plaintext: plaintext }),
    ["CiphertextBlob", "KeyId"],
  ),
  Decrypt: kmsScenario(
    "Decrypt 1 KiB",
    "Decrypt",
    (target) => ({ CiphertextBlob: target.ciphertext }),
    ["Plaintext", "KeyId"],
  ),
  GenerateDataKey: kmsScenario(
    "GenerateDataKey AES_256",
    "GenerateDataKey",
    (target) => ({ KeyId: target.keyId, KeySpec: "AES_256" }),
    ["CiphertextBlob", "Plaintext", "KeyId"],
  ),
};
const scenarios = args.scenarios.split(",").map((name) => {
  const scenario = allScenarios[name.trim()];
  if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(allScenarios)}`);
  return scenario;
});

const started = new Date();
console.log(
  `keyhaven bench ${started.toISOString()}: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ` +
    `${args.connections} connections${Number(args.rate) ? ` at ${args.rate} req/s` : ""}, ${args.rounds} rounds × ${args.duration}s (+${args.warmup}s warm-up) per server, ` +
    `load average ${loadavg()[0].toFixed(2)}`,
);
let summaries;
try {
  summaries = await compare({
    baseline: echoTarget,
    subjects,
    scenarios,
    rounds: Number(args.rounds),
    durationSeconds: Number(args.duration),
    warmupSeconds: Number(args.warmup),
    connections: Number(args.connections),
    overallRate: Number(args.rate) || undefined,
    log: (line) => console.log(`  ${line}`),
  });
} finally {
  await echo.stop();
  for (const target of subjects) {
    const summary = await target.stop();
    if (summary.auditLines !== undefined)
      console.log(
        `  ${target.name}: ${summary.auditLines} audit lines for ${target.responses ?? 0} responses under load (+ setup and check calls)`,
      );
  }
  rmSync(tempDir, { recursive: true, force: true });
}

console.log(
  `  load average at the end: ${loadavg()[0].toFixed(2)} (other work on the machine skews absolute figures)`,
);
console.log("");
console.log(formatSummaries(summaries, { baselineName: "echo" }));
const errors = summaries.reduce((n, s) => n + s.baseline.errors + s.subject.errors, 0);
if (errors > 0)
  console.log(`\nWARNING: ${errors} requests failed; the figures above are not valid.`);
if (args.json) {
  writeFileSync(
    args.json,
    JSON.stringify(
      {
        date: started.toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadAverage: loadavg()[0],
        args,
        summaries,
      },
      null,
      2,
    ),
  );
}
// The real-cluster benches run after the key-service rounds, each as its own process.
for (const [flag, file] of [
  ["admission-cluster", "admission-cluster.mjs"],
  ["controller-cluster", "controller-cluster.mjs"],
]) {
  if (!args[flag]) continue;
  const { spawnSync } = await import("node:child_process");
  console.log("");
  spawnSync(process.execPath, [join(here, file)], { stdio: "inherit" });
}
