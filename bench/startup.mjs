/**
 * Start-up and memory with many keys: writes N keys of mixed specs straight into a
 * fresh store (as CreateKey would: material wrapped under the root key), then starts
 * `node dist/src/main.js serve` on it and reports the time from spawn to the
 * "key service listening" line, the resident memory (VmRSS) idle, and again after every
 * key was used once (Encrypt, Sign or GenerateMac, over HTTP with SigV4).
 *
 *   node bench/startup.mjs [--keys 10000] [--concurrency 16]
 *
 * Run `npm run build` first. Information only (docs/benchmarks.md).
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { benchCredential, benchIdentity } from "./lib/keyService.mjs";
import { callKms } from "./lib/sign.mjs";
const {
  KeyService,
  LocalRootKey,
  SqliteKeyStore,
  generateKeyMaterial,
  defaultKeyPolicy,
  pooledRandom,
} = await import("../dist/src/bench/keyService.js");

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "16" },
  },
});
const total = Number(args.keys);
const { region, account, credential } = benchIdentity();
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-startup-"));
/** The mix: mostly symmetric keys, some ECC and HMAC, a few RSA (slow to generate). */
const mix = [
  { keySpec: "RSA_2048", keyUsage: "SIGN_VERIFY", share: 0.005 },
  { keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY", share: 0.03 },
  { keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC", share: 0.025 },
];

console.log(`startup bench: ${total} keys, load average ${loadavg()[0].toFixed(2)}`);
const seeded = Date.now();
const { rootKey } = LocalRootKey.openOrCreate(join(dataDir, "root.key"));
const store = new SqliteKeyStore(join(dataDir, "keyhaven.db"));
await store.setMeta("rootKeyId", rootKey.id);
const random = pooledRandom();
const policy = defaultKeyPolicy(account);
const keys = [];
for (let i = 0; i < total; i++) {
  let spec = { keySpec: "SYMMETRIC_DEFAULT", keyUsage: "ENCRYPT_DECRYPT" };
  let at = 0;
  for (const m of mix) {
    if (i < (at += Math.round(m.share * total))) {
      spec = m;
      break;
    }
  }
  const keyId = randomUUID();
  const material = await generateKeyMaterial(spec.keySpec, random);
  const wrapped = await rootKey.wrap(material, KeyService.materialContext(keyId, 1));
  const now = Date.now();
  await store.createKey(
    {
      keyId,
      arn: `arn:aws:kms:${region}:${account}:key/${keyId}`,
      createdAt: now,
      description: `startup bench ${i}`,
      keySpec: spec.keySpec,
      keyUsage: spec.keyUsage,
      origin: "AWS_KMS",
      state: "Enabled",
      policy,
      tags: [],
      currentMaterialVersion: 1,
    },
    { keyId, version: 1, createdAt: now, wrapped },
  );
  keys.push({ keyId, ...spec });
}
await store.close();
await rootKey.close?.();
console.log(`  seeded in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);

const credentialsFile = join(dataDir, "bench-credentials.yaml");
writeFileSync(credentialsFile, stringify({ credentials: [benchCredential(credential, account)] }), {
  mode: 0o600,
});
const started = process.hrtime.bigint();
const child = spawn(
  process.execPath,
  [
    join(import.meta.dirname, "../dist/src/main.js"),
    "serve",
    "--data",
    dataDir,
    "--listen",
    "127.0.0.1:0",
    "--credentials",
    credentialsFile,
    // One process: its RSS is the figure (--workers defaults to one per CPU).
    "--workers",
    "1",
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
const url = await new Promise((resolve, reject) => {
  let buffered = "";
  const onData = (chunk) => {
    buffered += chunk;
    const line = buffered.split("\n").find((l) => l.includes('"msg":"key service listening"'));
    if (!line) return;
    child.stdout.off("data", onData);
    child.stdout.resume(); // audit lines: read and dropped
    resolve(JSON.parse(line).url);
  };
  child.stdout.setEncoding("utf8").on("data", onData);
  child.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
});
const readyMs = Number(process.hrtime.bigint() - started) / 1e6;
const rssMb = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))[1]) / 1024;
await delay(2000);
const idle = rssMb();
const target = { url, region, credential };
const message = randomBytes(32).toString("base64");
const call = (k) =>
  k.keyUsage === "ENCRYPT_DECRYPT"
    ? callKms(target, "Encrypt", { KeyId: k.keyId, Plaintext: message })
    : k.keyUsage === "SIGN_VERIFY"
      ? callKms(target, "Sign", {
          KeyId: k.keyId,
          Message: message,
          SigningAlgorithm: k.keySpec.startsWith("RSA") ? "RSASSA_PSS_SHA_256" : "ECDSA_SHA_256",
        })
      : callKms(target, "GenerateMac", {
          KeyId: k.keyId,
          Message: message,
          MacAlgorithm: "HMAC_SHA_256",
        });
let next = 0;
let failed = 0;
const used = Date.now();
await Promise.all(
  Array.from({ length: Number(args.concurrency) }, async () => {
    while (next < keys.length) {
      const { status } = await call(keys[next++]);
      if (status !== 200) failed++;
    }
  }),
);
const usedSeconds = (Date.now() - used) / 1000;
await delay(2000);
const afterUse = rssMb();
child.kill("SIGTERM");
await new Promise((resolve) => child.once("exit", resolve));
rmSync(dataDir, { recursive: true, force: true });
console.log(`  load average at the end: ${loadavg()[0].toFixed(2)}\n`);
console.log(
  `keys   ready ms  RSS idle MB  RSS after using every key once MB  (use took s, failures)`,
);
console.log(
  `${String(total).padEnd(6)} ${readyMs.toFixed(0).padStart(8)}  ${idle.toFixed(1).padStart(11)}  ${afterUse.toFixed(1).padStart(34)}  (${usedSeconds.toFixed(1)} s, ${failed})`,
);
