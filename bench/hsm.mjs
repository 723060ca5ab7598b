/**
 * Encrypt 1 KiB with the root key in an HSM and with an HSM-resident key, as ratios to the
 * local root key, measured in the same run, interleaved A B C A B C (bench/lib/harness.mjs):
 *
 *   local root key    `keyhaven serve` (the default root key), a KMS key in its store
 *   pkcs11 root key   `keyhaven serve --root-key pkcs11` through a real `p11-kit server`
 *                     over SoftHSM2 (the chart's sidecar), a KMS key in its store: its
 *                     material is unwrapped by the token once, then served from the
 *                     material cache (warm cache, the hot path)
 *   HSM-resident key  the same server, a key in an AWS_CLOUDHSM custom key store on a
 *                     second token of the same sidecar: every Encrypt is computed by the
 *                     token through the socket
 *
 *   npm run build && node bench/hsm.mjs [--rounds 3] [--duration 3] [--warmup 1]
 *        [--connections 16] [--json FILE]
 *
 * Needs softhsm2, p11-kit and p11-kit-modules (scripts/test-prerequisites.sh).
 * Numbers are information, never a pass/fail gate; see docs/benchmarks.md.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { compare, formatSummaries } from "./lib/harness.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    connections: { type: "string", default: "16" },
    json: { type: "string" },
  },
});

const arch = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
const firstOf = (paths, pkg) => {
  const found = paths.find((p) => existsSync(p));
  if (!found) throw new Error(`${paths.join(" or ")} not found: install Debian's ${pkg}`);
  return found;
};
const SOFTHSM = firstOf(
  ["/usr/lib/softhsm/libsofthsm2.so", `/usr/lib/${arch}/softhsm/libsofthsm2.so`],
  "softhsm2",
);
const CLIENT = firstOf([`/usr/lib/${arch}/pkcs11/p11-kit-client.so`], "p11-kit-modules");

const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHMARK0000003",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const here = import.meta.dirname;
const dir = mkdtempSync(join(tmpdir(), "keyhaven-bench-hsm-"));

// Two SoftHSM2 tokens behind one `p11-kit server`: the root key's and a custom key store's
// (its label fits AWS's CloudHsmClusterId pattern, cluster-[2-7a-zA-Z]{11,16}).
const ROOT_TOKEN = "keyhaven";
const STORE_TOKEN = "benchkeystore";
const pin = randomBytes(6).toString("hex");
mkdirSync(join(dir, "tokens"));
const conf = join(dir, "softhsm2.conf");
writeFileSync(conf, `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\n`);
const softhsmEnv = { ...process.env, SOFTHSM2_CONF: conf };
for (const label of [ROOT_TOKEN, STORE_TOKEN])
  execFileSync(
    "softhsm2-util",
    ["--init-token", "--free", "--label", label, "--so-pin", `so-${pin}`, "--pin", pin],
    { env: softhsmEnv, stdio: "ignore" },
  );
const socket = join(dir, "p11-kit.sock");
const sidecar = spawn(
  "p11-kit",
  [
    "server",
    "--foreground",
    `--name=${socket}`,
    `--provider=${SOFTHSM}`,
    `pkcs11:token=${ROOT_TOKEN}`,
    `pkcs11:token=${STORE_TOKEN}`,
  ],
  { env: softhsmEnv, stdio: "ignore", detached: true },
);
for (let waited = 0; !existsSync(socket); waited += 20) {
  if (waited > 10_000) throw new Error("p11-kit server did not listen");
  await delay(20);
}
// The key service's children inherit it: p11-kit-client.so reads it from the environment.
process.env["P11_KIT_SERVER_ADDRESS"] = `unix:path=${socket}`;

const start = (name, extra = {}) =>
  spawnServer(
    join(here, "servers/keyService.mjs"),
    { dataDir: join(dir, name), credential, region, account, ...extra },
    { name },
  );
const local = await start("local root key");
const hsm = await start("pkcs11 root key", {
  args: ["--root-key", "pkcs11", "--pkcs11-module", CLIENT, "--pkcs11-token-label", ROOT_TOKEN],
  env: { KEYHAVEN_PKCS11_PIN: pin },
});

const createKey = async (server, input = {}) => {
  const { status, json } = await callKms({ ...server, region, credential }, "CreateKey", input);
  if (status !== 200) throw new Error(`CreateKey on ${server.name}: ${JSON.stringify(json)}`);
  return json.KeyMetadata.KeyId;
};
const hsmTarget = { ...hsm, region, credential };
const store = await callKms(hsmTarget, "CreateCustomKeyStore", {
  CustomKeyStoreName: "bench",
  CloudHsmClusterId: `cluster-${STORE_TOKEN}`,
  KeyStorePassword: pin,
  TrustAnchorCertificate: "bench",
});
if (store.status !== 200) throw new Error(`CreateCustomKeyStore: ${JSON.stringify(store.json)}`);
const { CustomKeyStoreId } = store.json;
await callKms(hsmTarget, "ConnectCustomKeyStore", { CustomKeyStoreId });
for (let waited = 0; ; waited += 100) {
  const { json } = await callKms(hsmTarget, "DescribeCustomKeyStores", { CustomKeyStoreId });
  const state = json.CustomKeyStores?.[0]?.ConnectionState;
  if (state === "CONNECTED") break;
  if (state === "FAILED" || waited > 15_000)
    throw new Error(`custom key store ${state}: ${JSON.stringify(json)}`);
  await delay(100);
}

const targets = {
  local: { ...local, region, credential, keyId: await createKey(local) },
  rootInHsm: { ...hsm, region, credential, keyId: await createKey(hsm) },
  resident: {
    ...hsm,
    name: "HSM-resident key",
    region,
    credential,
    keyId: await createKey(hsm, { Origin: "AWS_CLOUDHSM", CustomKeyStoreId }),
  },
};
const plaintext = randomBytes(1024).toString("base64");
const encrypt = {
  name: "Encrypt 1 KiB",
  async prepare(target) {
    return [await signKmsRequest(target, "Encrypt", { KeyId: target.keyId, Plaintext: plaintext })];
  },
  // Also warms the material cache: the first Encrypt unwraps the key's material.
  async check(target) {
    const { status, json } = await callKms(target, "Encrypt", {
      KeyId: target.keyId,
      Plaintext: plaintext,
    });
    if (status !== 200) throw new Error(`Encrypt on ${target.name}: ${JSON.stringify(json)}`);
  },
};

const loadBefore = loadavg();
let summaries;
try {
  summaries = await compare({
    baseline: targets.local,
    subjects: [targets.rootInHsm, targets.resident],
    scenarios: [encrypt],
    rounds: Number(args.rounds),
    durationSeconds: Number(args.duration),
    warmupSeconds: Number(args.warmup),
    connections: Number(args.connections),
    log: (line) => console.error(line),
  });
} finally {
  await hsm.stop();
  await local.stop();
  process.kill(-sidecar.pid, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
const loadAfter = loadavg();
console.log(
  `\n${cpus().length} CPUs; load average before ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, after ${loadAfter.map((l) => l.toFixed(2)).join(" ")}`,
);
console.log(formatSummaries(summaries, { baselineName: "local root key" }));
if (args.json)
  writeFileSync(
    args.json,
    JSON.stringify({ summaries, loadBefore, loadAfter, date: new Date().toISOString() }, null, 2),
  );
