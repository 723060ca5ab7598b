/**
 * The kubernetes store against the sqlite store, in the same run (docs/high-availability.md):
 * Encrypt and Decrypt throughput of one key service on each (reads come from memory, so the
 * goal is a ratio of at least 1.0), and CreateKey per second on each (a write is a round
 * trip to the API server and etcd). With --scale N: N keys with 3 material versions, N
 * aliases and N grants written to a namespace, then the time and heap a fresh replica
 * needs to list them into its cache.
 *
 *   npm run build && node --expose-gc bench/kubernetes-store.mjs [--rounds 3] [--duration 3]
 *       [--connections 20] [--create-seconds 5] [--scale 0]
 *
 * Needs ../shared/kubernetes/kube-up (a real etcd + kube-apiserver). Numbers are
 * information, never a pass/fail gate.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { credential, startKeyService } from "./lib/controllerBench.mjs";
import { median, runLoad } from "./lib/harness.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "3" },
    connections: { type: "string", default: "20" },
    "create-seconds": { type: "string", default: "5" },
    scale: { type: "string", default: "0" },
    "scale-concurrency": { type: "string", default: "64" },
    "scale-only": { type: "boolean", default: false },
  },
});
const here = import.meta.dirname;
const root = resolve(here, "..");
const temp = mkdtempSync(join(tmpdir(), "keyhaven-bench-kstore-"));
const kubeDir = join(temp, "kube");
const shared = resolve(process.env.KEYHAVEN_SHARED ?? join(root, "..", "shared"));
execFileSync(join(shared, "kubernetes", "kube-up"), [kubeDir], { stdio: "ignore" });
const kubeconfig = join(kubeDir, "kubeconfig");
const kubectl = (...a) => execFileSync("kubectl", ["--kubeconfig", kubeconfig, ...a]).toString();
const namespace = "keyhaven-bench";
kubectl("create", "namespace", namespace);

const services = [];
let kube0;

/** A key as CreateKey on the kubernetes store makes it: its record and wrapped size. */
async function templateKey(kube) {
  const { json } = await callKms(kube, "CreateKey", {});
  const secret = JSON.parse(
    kubectl("get", "secret", "-n", namespace, `store-key-${json.KeyMetadata.KeyId}`, "-o", "json"),
  );
  const unb64 = (v) => Buffer.from(v, "base64").toString("utf8");
  const record = JSON.parse(unb64(secret.data.record));
  const m1 = JSON.parse(unb64(secret.data["material.1"]));
  return { record, wrappedBytes: Buffer.from(m1.wrapped, "base64").length };
}
async function keyService(name, extra) {
  const service = await startKeyService(extra);
  services.push(service);
  return { name, url: service.url, region: "us-east-1", credential };
}

try {
  const sqlite = await keyService("sqlite", []);
  const kube = await keyService("kubernetes", [
    "--store",
    "kubernetes",
    "--store-namespace",
    namespace,
    "--kubeconfig",
    kubeconfig,
  ]);
  kube0 = kube;
  const targets = [sqlite, kube];
  if (!args["scale-only"]) await throughput(targets);
  const scale = Number(args.scale);
  if (scale > 0) await measureScale(scale, await templateKey(kube));
} finally {
  await Promise.all(services.map((s) => s.stop()));
  execFileSync(join(shared, "kubernetes", "kube-down"), [kubeDir], { stdio: "ignore" });
}

/** Encrypt and Decrypt on both stores, rounds alternating the order; CreateKey per second. */
async function throughput(targets) {
  const requestsFor = {};
  for (const t of targets) {
    const { json } = await callKms(t, "CreateKey", {});
    const keyId = json.KeyMetadata.KeyId;
    const plaintext = randomBytes(32).toString("base64");
    const enc = await callKms(t, "Encrypt", { KeyId: keyId, Plaintext: plaintext });
    requestsFor[t.name] = {
      Encrypt: [await signKmsRequest(t, "Encrypt", { KeyId: keyId, Plaintext: plaintext })],
      Decrypt: [await signKmsRequest(t, "Decrypt", { CiphertextBlob: enc.json.CiphertextBlob })],
    };
  }
  const load = { connections: Number(args.connections), durationSeconds: Number(args.duration) };
  const results = {
    Encrypt: { sqlite: [], kubernetes: [] },
    Decrypt: { sqlite: [], kubernetes: [] },
  };
  for (const scenario of ["Encrypt", "Decrypt"])
    for (const t of targets)
      await runLoad(t, requestsFor[t.name][scenario], { ...load, durationSeconds: 1 });
  for (let round = 0; round < Number(args.rounds); round++)
    for (const scenario of ["Encrypt", "Decrypt"])
      for (const t of round % 2 ? [...targets].reverse() : targets) {
        const run = await runLoad(t, requestsFor[t.name][scenario], load);
        if (run.errors > 0) throw new Error(`${t.name} ${scenario}: ${run.errors} errors`);
        results[scenario][t.name].push(run.requestsPerSecond);
      }
  for (const [scenario, r] of Object.entries(results)) {
    const ratios = r.sqlite.map((s, i) => r.kubernetes[i] / s);
    console.log(
      `${scenario}: sqlite ${median(r.sqlite).toFixed(0)}/s, kubernetes ${median(r.kubernetes).toFixed(0)}/s, ratio kubernetes/sqlite ${median(ratios).toFixed(2)}`,
    );
  }
  for (const t of targets) {
    const end = Date.now() + Number(args["create-seconds"]) * 1000;
    let created = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() < end) {
          const { status } = await callKms(t, "CreateKey", {});
          if (status !== 200) throw new Error(`${t.name} CreateKey ${status}`);
          created++;
        }
      }),
    );
    console.log(
      `CreateKey on ${t.name}: ${(created / Number(args["create-seconds"])).toFixed(1)}/s (8 concurrent callers)`,
    );
  }
}

/**
 * N keys × 3 versions, N aliases, N grants into a namespace, built by the store's own
 * serialisation (keyStoreObject & co., records shaped on a key CreateKey made) and created
 * `--scale-concurrency` at a time; then a fresh store's list into its cache (time, heap) and
 * a fresh `keyhaven serve --store kubernetes` process's start to listening (time, RSS); and
 * the largest key object (a 32 KB policy, 50 tags, an 8 KB description, ~100 years of versions).
 */
async function measureScale(n, template) {
  const {
    loadKubeConfig,
    storeSecrets,
    KubernetesKeyStore,
    keyStoreObject,
    aliasStoreObject,
    grantStoreObject,
  } = await import(join(root, "dist/src/bench/kubernetesStore.js"));
  const ns = "keyhaven-scale";
  kubectl("create", "namespace", ns);
  const kc = loadKubeConfig(kubeconfig);
  const secrets = storeSecrets(kc, ns);
  const material = (keyId, version, wrappedBytes) => ({
    keyId,
    version,
    createdAt: template.record.createdAt + version,
    wrapped: randomBytes(wrappedBytes),
    materialId: randomBytes(32).toString("hex"),
    ...(version > 1 && { rotationType: "AUTOMATIC" }),
  });
  const keyRecord = (keyId, extra = {}) => ({
    ...template.record,
    keyId,
    arn: template.record.arn.replace(template.record.keyId, keyId),
    ...extra,
  });
  const objects = function* () {
    for (let i = 0; i < n; i++) {
      const keyId = randomUUID();
      yield keyStoreObject(
        keyRecord(keyId, { currentMaterialVersion: 3 }),
        [1, 2, 3].map((v) => material(keyId, v, template.wrappedBytes)),
      );
      yield aliasStoreObject({
        name: `alias/scale-${i}`,
        targetKeyId: keyId,
        createdAt: template.record.createdAt,
        updatedAt: template.record.createdAt,
      });
      yield grantStoreObject({
        grantId: randomBytes(32).toString("hex"),
        keyId,
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        issuingAccount: "arn:aws:iam::000000000000:root",
        operations: ["Encrypt", "Decrypt", "GenerateDataKey"],
        createdAt: template.record.createdAt,
      });
    }
  };
  const started = Date.now();
  const queue = objects();
  let written = 0;
  await Promise.all(
    Array.from({ length: Number(args["scale-concurrency"]) }, async () => {
      for (let next = queue.next(); !next.done; next = queue.next()) {
        const o = next.value;
        for (let attempt = 1; ; attempt++)
          try {
            await secrets.create(o.name, o.labels, o.data);
            break;
          } catch (err) {
            // a create the API server did but whose answer was lost is done
            if (err?.code === 409) break;
            if (attempt >= 5) throw err;
          }
        if (++written % 5000 === 0)
          console.log(
            `scale: ${written}/${3 * n} objects, ${((Date.now() - started) / 1000).toFixed(0)} s`,
          );
      }
    }),
  );
  console.log(
    `scale: created ${n} keys (3 versions), ${n} aliases, ${n} grants (${3 * n} Secrets, ${args["scale-concurrency"]} in flight) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const reader = await KubernetesKeyStore.open(storeSecrets(kc, ns));
  const ms = performance.now() - t0;
  globalThis.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const counted = (await reader.countKeys()).reduce((a, c) => a + c.count, 0);
  const aliases = (await reader.listAliases(10 * n)).items.length;
  await reader.close();
  console.log(
    `scale: a fresh store lists ${3 * n} objects into its cache (${counted} keys, ${aliases} aliases) in ${(ms / 1000).toFixed(1)} s; cache heap ${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB${globalThis.gc ? "" : " (run with --expose-gc for a cleaner figure)"}`,
  );
  const p0 = performance.now();
  const replica = await startKeyService([
    "--store",
    "kubernetes",
    "--store-namespace",
    ns,
    "--kubeconfig",
    kubeconfig,
  ]);
  const readyMs = performance.now() - p0;
  const status = readFileSync(`/proc/${replica.pid}/status`, "utf8");
  const kib = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const { json } = await callKms({ ...kube0, url: replica.url }, "DescribeKey", {
    KeyId: "alias/scale-0",
  });
  await replica.stop();
  console.log(
    `scale: a fresh keyhaven serve process, start to listening: ${(readyMs / 1000).toFixed(1)} s; RSS ${(kib("VmRSS") / 1024).toFixed(0)} MiB (peak ${(kib("VmHWM") / 1024).toFixed(0)} MiB); alias/scale-0 → ${json.KeyMetadata ? "found" : "missing"}`,
  );
  // The largest key object: every limit at its maximum, ~100 years of rotation.
  const versions = 1 + 25 + Math.ceil((100 * 365) / 90);
  const bigId = randomUUID();
  const policy = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "x".repeat(32_700),
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: "kms:*",
        Resource: "*",
      },
    ],
  }).slice(0, 32_768);
  const big = keyStoreObject(
    keyRecord(bigId, {
      description: "d".repeat(8192),
      policy,
      tags: Array.from({ length: 50 }, (_, i) => ({
        TagKey: `${i}`.padEnd(128, "k"),
        TagValue: "v".repeat(256),
      })),
      currentMaterialVersion: versions,
    }),
    Array.from({ length: versions }, (_, i) => material(bigId, i + 1, template.wrappedBytes)),
  );
  await secrets.create(big.name, big.labels, big.data);
  const stored = kubectl("get", "secret", "-n", ns, big.name, "-o", "json").length;
  const perVersion =
    (Buffer.byteLength(JSON.stringify(big.data)) - Buffer.byteLength(big.data.record)) / versions;
  console.log(
    `scale: the largest key object (32 KB policy, 50 tags, 8 KB description, ${versions} versions) is ${(stored / 1024).toFixed(0)} KiB as the API server returns it (~${perVersion.toFixed(0)} B per version; a Secret's 1 MiB would take ~${Math.floor((2 ** 20 - (stored - versions * perVersion)) / perVersion)} versions; etcd's request limit is 1.5 MiB)`,
  );
}
