/**
 * Encrypt's latency with RSA traffic mixed in. First the key service's Encrypt 1 KiB
 * capacity (a saturating load); then, each round, Encrypt alone at a fixed rate (--share
 * of that capacity, default half), and the same Encrypt rate with RSA-3072 Sign requests
 * added at a ninth of it, so that Signs are a tenth of all requests (autocannon's
 * overallRate; enough connections that the rate is reached). On each build, in the same
 * run. Reports Encrypt's p50/p99 with and without the Sign traffic and their ratio (the
 * goal: Encrypt's p99 within 2× of its p99 without RSA; docs/benchmarks.md). A fixed
 * rate, not a saturating one: a saturated server's latency is its queue, and 10% of
 * RSA-3072 at full Encrypt throughput needs more CPU than a 2-core machine has.
 *
 *   node bench/mixed-rsa.mjs [--rounds 2] [--duration 4] [--share 0.5] [--compare NAME=DIST ...]
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { median, quantile } from "./lib/harness.mjs";
import { benchIdentity } from "./lib/keyService.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    duration: { type: "string", default: "4" },
    connections: { type: "string", default: "40" },
    share: { type: "string", default: "0.5" },
    compare: { type: "string", multiple: true, default: [] },
  },
});
const { region, account, credential } = benchIdentity();
const here = import.meta.dirname;
const tempDir = mkdtempSync(join(tmpdir(), "keyhaven-mixed-"));
const builds = [
  ["keyhaven", undefined],
  ...args.compare.map((spec) => [
    spec.slice(0, spec.indexOf("=")),
    spec.slice(spec.indexOf("=") + 1),
  ]),
];

/** One autocannon load; returns requests/s and the sorted response times (ms). */
async function load(url, requests, { connections, seconds, overallRate }) {
  const times = [];
  let errors = 0;
  const instance = autocannon({
    url,
    connections,
    pipelining: 1,
    duration: seconds,
    requests,
    ...(overallRate && { overallRate }),
  });
  instance.on("response", (_c, status, _b, time) => {
    times.push(time);
    if (status !== 200) errors++;
  });
  const result = await instance;
  return {
    perSecond: times.length / result.duration,
    sorted: Float64Array.from(times).sort(),
    errors: errors + result.errors + result.timeouts,
  };
}

const connections = Number(args.connections);
const seconds = Number(args.duration);
const rows = [];
console.log(`mixed RSA bench: load average ${loadavg()[0].toFixed(2)}`);
for (const [name, dist] of builds) {
  const server = await spawnServer(
    join(here, "servers/keyService.mjs"),
    { dataDir: join(tempDir, name), credential, region, account, ...(dist && { dist }) },
    { name },
  );
  try {
    const target = { ...server, region, credential };
    const aes = await callKms(target, "CreateKey", {});
    const rsa = await callKms(target, "CreateKey", {
      KeySpec: "RSA_3072",
      KeyUsage: "SIGN_VERIFY",
    });
    if (aes.status !== 200 || rsa.status !== 200) throw new Error(`${name}: CreateKey failed`);
    const encrypt = [
      await signKmsRequest(target, "Encrypt", {
        KeyId: aes.json.KeyMetadata.KeyId,
        Plaintext: randomBytes(1024).toString("base64"),
      }),
    ];
    const signRequest = [
      await signKmsRequest(target, "Sign", {
        KeyId: rsa.json.KeyMetadata.KeyId,
        Message: randomBytes(64).toString("base64"),
        SigningAlgorithm: "RSASSA_PSS_SHA_256",
      }),
    ];
    const probe = await callKms(target, "Sign", JSON.parse(signRequest[0].body));
    if (probe.status !== 200)
      throw new Error(`${name}: Sign failed: ${JSON.stringify(probe.json)}`);
    await load(server.url, encrypt, { connections, seconds: 1 });
    const capacity = (await load(server.url, encrypt, { connections, seconds })).perSecond;
    const rate = Math.max(9, Math.round(capacity * Number(args.share)));
    const alone = [];
    const mixed = [];
    let signsPerSecond = [];
    for (let round = 0; round < Number(args.rounds); round++) {
      const a = await load(server.url, encrypt, { connections, seconds, overallRate: rate });
      alone.push(a);
      const [m, s] = await Promise.all([
        load(server.url, encrypt, { connections, seconds, overallRate: rate }),
        load(server.url, signRequest, {
          connections: 16,
          seconds,
          overallRate: Math.round(rate / 9),
        }),
      ]);
      mixed.push(m);
      signsPerSecond.push(s.perSecond);
      if (a.errors + m.errors + s.errors > 0)
        console.log(`  ${name}: errors in round ${round + 1}`);
    }
    const p = (runs, q) => median(runs.map((r) => quantile(r.sorted, q)));
    rows.push({
      name,
      capacity,
      aloneRps: median(alone.map((r) => r.perSecond)),
      mixedRps: median(mixed.map((r) => r.perSecond)),
      signRps: median(signsPerSecond),
      alone50: p(alone, 0.5),
      alone99: p(alone, 0.99),
      mixed50: p(mixed, 0.5),
      mixed99: p(mixed, 0.99),
    });
  } finally {
    await server.stop();
  }
}
rmSync(tempDir, { recursive: true, force: true });
console.log(`load average at the end: ${loadavg()[0].toFixed(2)}\n`);
console.log(
  "build     capacity/s  Encrypt/s alone  p50/p99 ms alone  Encrypt/s mixed  Sign/s  p50/p99 ms mixed  p99 mixed/alone",
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(9)} ${r.capacity.toFixed(0).padStart(10)}  ${r.aloneRps.toFixed(0).padStart(15)}  ${`${r.alone50.toFixed(2)}/${r.alone99.toFixed(2)}`.padStart(16)}  ${r.mixedRps.toFixed(0).padStart(15)}  ${r.signRps.toFixed(0).padStart(6)}  ${`${r.mixed50.toFixed(2)}/${r.mixed99.toFixed(2)}`.padStart(16)}  ${(r.mixed99 / r.alone99).toFixed(2).padStart(15)}`,
  );
