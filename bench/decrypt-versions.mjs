/**
 * Decrypt of a ciphertext made under an old key-material version vs the newest, on a
 * key with 100 versions: the blob names its version, so the cost must not depend on
 * how old it is. Two comparisons, each interleaved A B A B with the median ratio:
 *
 *   1. Decrypt (version 100 of 100) against the bare echo server: the usual context.
 *   2. Decrypt (version 1 of 100) against Decrypt (version 100 of 100) on the same
 *      server: the figure this benchmark is for (≈1.00 means "no more expensive").
 *      It runs twice, newest-first and oldest-first, and reports the geometric mean
 *      of the two ratios, which cancels any bias from running second in each pair.
 *
 *   npm run build && node bench/decrypt-versions.mjs [--rounds 5] [--duration 5]
 *        [--warmup 2] [--connections 50] [--versions 100] [--json FILE]
 *
 * Numbers are information, never a pass/fail gate; see docs/key-lifecycle.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    versions: { type: "string", default: "100" },
    json: { type: "string" },
  },
});

const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHMARK0000002",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const here = import.meta.dirname;
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-versions-"));

const echo = await spawnServer(join(here, "servers/echo.mjs"), {}, { name: "echo" });
const keyhaven = await spawnServer(
  join(here, "servers/keyServiceVersions.mjs"),
  { dataDir, credential, region, account, versions: Number(args.versions) },
  { name: "keyhaven" },
);
const { oldest, newest, versions } = keyhaven.info;
const blobVersion = (b64) => Buffer.from(b64, "base64").readUInt32BE(17);
console.log(
  `key with ${versions} material versions; ciphertexts under version ${blobVersion(oldest)} and ${blobVersion(newest)}`,
);

// Targets are the same server; `blob` picks which ciphertext a scenario replays.
const echoTarget = { ...echo, region, credential, blob: newest };
const newestTarget = {
  ...keyhaven,
  name: `decrypt v${blobVersion(newest)}`,
  region,
  credential,
  blob: newest,
};
const oldestTarget = {
  ...keyhaven,
  name: `decrypt v${blobVersion(oldest)}`,
  region,
  credential,
  blob: oldest,
};

const decryptScenario = {
  name: "Decrypt 1 KiB",
  async prepare(target) {
    return [await signKmsRequest(target, "Decrypt", { CiphertextBlob: target.blob })];
  },
  async check(target) {
    for (const blob of [oldest, newest]) {
      const { status, json } = await callKms(target, "Decrypt", { CiphertextBlob: blob });
      if (status !== 200 || Buffer.from(json.Plaintext, "base64").length !== 1024)
        throw new Error(`Decrypt sanity call failed: ${status} ${JSON.stringify(json)}`);
    }
  },
};

const options = {
  rounds: Number(args.rounds),
  durationSeconds: Number(args.duration),
  warmupSeconds: Number(args.warmup),
  connections: Number(args.connections),
  log: (line) => console.error(line),
};
let vsEcho;
let oldVsNew;
let newVsOld;
try {
  vsEcho = await compare({
    baseline: echoTarget,
    subject: newestTarget,
    scenarios: [decryptScenario],
    ...options,
  });
  oldVsNew = await compare({
    baseline: newestTarget,
    subject: oldestTarget,
    scenarios: [{ ...decryptScenario, name: `Decrypt, ${versions} versions` }],
    ...options,
  });
  newVsOld = await compare({
    baseline: oldestTarget,
    subject: newestTarget,
    scenarios: [{ ...decryptScenario, name: `Decrypt, ${versions} versions (oldest first)` }],
    ...options,
  });
} finally {
  const summary = await keyhaven.stop();
  await echo.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (summary?.auditLines !== undefined)
    console.error(`audit lines written: ${summary.auditLines}`);
}

console.log("\nDecrypt (newest version) vs the bare echo server");
console.log(formatSummaries(vsEcho, { baselineName: "echo", subjectName: "keyhaven" }));
console.log(`\nDecrypt of the oldest version vs the newest, ${versions} versions present`);
console.log(
  formatSummaries(oldVsNew, {
    baselineName: newestTarget.name,
    subjectName: oldestTarget.name,
  }),
);
console.log(
  formatSummaries(newVsOld, {
    baselineName: oldestTarget.name,
    subjectName: newestTarget.name,
  }),
);
const { subject: old, baseline: latest } = oldVsNew[0];
const ratio = Math.sqrt(oldVsNew[0].ratio / newVsOld[0].ratio);
console.log(
  `\nthroughput ratio oldest/newest: ${ratio.toFixed(3)} (geometric mean of ${oldVsNew[0].ratio.toFixed(3)} newest-first and ${(1 / newVsOld[0].ratio).toFixed(3)} oldest-first; 1.00 = same cost; p50 ${old.p50.toFixed(3)} vs ${latest.p50.toFixed(3)} ms)`,
);
// Server CPU per request is steadier than throughput on a shared machine.
console.log(
  `server CPU per Decrypt, oldest/newest: ${(old.cpuMicrosPerRequest / latest.cpuMicrosPerRequest).toFixed(3)} (${old.cpuMicrosPerRequest.toFixed(1)} vs ${latest.cpuMicrosPerRequest.toFixed(1)} µs)`,
);
if (args.json)
  writeFileSync(
    args.json,
    JSON.stringify(
      { vsEcho, oldVsNew, newVsOld, ratio, versions, date: new Date().toISOString() },
      null,
      2,
    ),
  );
