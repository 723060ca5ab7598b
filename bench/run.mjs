/**
 * `npm run bench`: the key service's hot paths against a bare Node JSON echo server,
 * measured in the same run, interleaved, with the median ratio reported.
 *
 *   node bench/run.mjs [--rounds 5] [--duration 5] [--warmup 2] [--connections 50]
 *                      [--scenarios Encrypt,GenerateDataKey] [--json FILE] [--profile DIR]
 *
 * --profile DIR runs the key service under `node --cpu-prof` and leaves the
 * .cpuprofile in DIR (open it in Chrome DevTools or speedscope).
 * Numbers are information, never a pass/fail gate; see docs/benchmarks.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
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
    scenarios: { type: "string", default: "Encrypt,GenerateDataKey" },
    json: { type: "string" },
    profile: { type: "string" },
  },
});

const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHMARK0000001",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const here = import.meta.dirname;
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-"));

const echo = await spawnServer(join(here, "servers/echo.mjs"), {}, { name: "echo" });
const keyhaven = await spawnServer(
  join(here, "servers/keyService.mjs"),
  { dataDir, credential, region, account },
  {
    name: "keyhaven",
    execArgv: args.profile ? ["--cpu-prof", `--cpu-prof-dir=${resolve(args.profile)}`] : [],
  },
);
const echoTarget = { ...echo, region, credential };
const subject = { ...keyhaven, region, credential };

const created = await callKms(subject, "CreateKey", { Description: "bench" });
if (created.status !== 200) throw new Error(`CreateKey failed: ${JSON.stringify(created.json)}`);
const keyId = created.json.KeyMetadata.KeyId;

/** A scenario: one KMS call replayed as fixed, pre-signed bytes. */
function kmsScenario(name, operation, input, expectFields) {
  return {
    name,
    async prepare(target) {
      return [await signKmsRequest(target, operation, input)];
    },
    async check(target) {
      const { status, json } = await callKms(target, operation, input);
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
    { KeyId: keyId, Plaintext: randomBytes(1024).toString("base64") },
    ["CiphertextBlob", "KeyId"],
  ),
  GenerateDataKey: kmsScenario(
    "GenerateDataKey AES_256",
    "GenerateDataKey",
    { KeyId: keyId, KeySpec: "AES_256" },
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
    `${args.connections} connections, ${args.rounds} rounds × ${args.duration}s (+${args.warmup}s warm-up) per server`,
);
let summaries;
try {
  summaries = await compare({
    baseline: echoTarget,
    subject,
    scenarios,
    rounds: Number(args.rounds),
    durationSeconds: Number(args.duration),
    warmupSeconds: Number(args.warmup),
    connections: Number(args.connections),
    log: (line) => console.log(`  ${line}`),
  });
} finally {
  await echo.stop();
  const summary = await keyhaven.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (summary.auditLines !== undefined) console.log(`  audit lines written: ${summary.auditLines}`);
}

console.log("");
console.log(formatSummaries(summaries, { baselineName: "echo", subjectName: "keyhaven" }));
const errors = summaries.reduce((n, s) => n + s.baseline.errors + s.subject.errors, 0);
if (errors > 0)
  console.log(`\nWARNING: ${errors} requests failed; the figures above are not valid.`);
if (args.json) {
  writeFileSync(
    args.json,
    JSON.stringify(
      { date: started.toISOString(), node: process.version, cpus: cpus().length, args, summaries },
      null,
      2,
    ),
  );
}
