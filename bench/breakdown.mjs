/**
 * Where the key service's CPU per request goes, by subtraction: the same server answers
 * requests that stop at successive stages, measured in the same run as the echo server.
 *
 *   GET /healthz                      HTTP only (no body, no signature, no audit line)
 *   Encrypt with a wrong signature    + body, SigV4 check (fails), error reply, audit line
 *   GenerateRandom 16 bytes           + caller policy, an operation without a key
 *   Encrypt 1 KiB                     + key read, key policy, AES-GCM, 1 KiB in and out
 *
 *   node bench/breakdown.mjs [--rounds 3] [--duration 3] [--connections 50]
 *
 * Reports CPU µs per request of each server process (process.cpuUsage) and the ratio of
 * requests/s to echo. Run `npm run build` first. Information only, never a gate.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { compare, formatSummaries } from "./lib/harness.mjs";
import { benchIdentity } from "./lib/keyService.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "3" },
    connections: { type: "string", default: "50" },
  },
});
const { region, account, credential } = benchIdentity();
const here = import.meta.dirname;
const tempDir = mkdtempSync(join(tmpdir(), "keyhaven-breakdown-"));
const echo = await spawnServer(join(here, "servers/echo.mjs"), {}, { name: "echo" });
const keyhaven = await spawnServer(
  join(here, "servers/keyService.mjs"),
  { dataDir: join(tempDir, "keyhaven"), credential, region, account },
  { name: "keyhaven" },
);
const target = { ...keyhaven, region, credential };
const created = await callKms(target, "CreateKey", { Description: "bench" });
if (created.status !== 200) throw new Error(`CreateKey failed: ${JSON.stringify(created.json)}`);
const keyId = created.json.KeyMetadata.KeyId;
const plaintext = randomBytes(1024).toString("base64");

const scenarios = [
  { name: "GET /healthz", prepare: async () => [{ method: "GET", path: "/healthz" }] },
  {
    name: "Encrypt, wrong signature (403)",
    prepare: async (t) => {
      const r = await signKmsRequest(t, "Encrypt", { KeyId: keyId, Plaintext: plaintext });
      const auth = r.headers.authorization;
      r.headers.authorization = auth.slice(0, -4) + (auth.endsWith("0000") ? "1111" : "0000");
      return [r];
    },
  },
  {
    name: "GenerateRandom 16",
    prepare: async (t) => [await signKmsRequest(t, "GenerateRandom", { NumberOfBytes: 16 })],
  },
  {
    name: "Encrypt 1 KiB",
    prepare: async (t) => [
      await signKmsRequest(t, "Encrypt", { KeyId: keyId, Plaintext: plaintext }),
    ],
  },
];
console.log(`breakdown: load average ${loadavg()[0].toFixed(2)}`);
let summaries;
try {
  summaries = await compare({
    baseline: { ...echo, region, credential },
    subjects: [target],
    scenarios,
    rounds: Number(args.rounds),
    durationSeconds: Number(args.duration),
    warmupSeconds: 1,
    connections: Number(args.connections),
  });
} finally {
  await echo.stop();
  await keyhaven.stop();
  rmSync(tempDir, { recursive: true, force: true });
}
console.log(`load average at the end: ${loadavg()[0].toFixed(2)}\n`);
console.log(formatSummaries(summaries, { baselineName: "echo" }));
