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
import { mkdtempSync } from "node:fs";
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
  },
});
const here = import.meta.dirname;
const root = resolve(here, "..");
const { ADMINISTRATOR_POLICY } = await import(join(root, "dist/src/bench/keyService.js"));
const temp = mkdtempSync(join(tmpdir(), "keyhaven-bench-kstore-"));
const kubeDir = join(temp, "kube");
const shared = resolve(process.env.KEYHAVEN_SHARED ?? join(root, "..", "shared"));
execFileSync(join(shared, "kubernetes", "kube-up"), [kubeDir], { stdio: "ignore" });
const kubeconfig = join(kubeDir, "kubeconfig");
const kubectl = (...a) => execFileSync("kubectl", ["--kubeconfig", kubeconfig, ...a]).toString();
const namespace = "keyhaven-bench";
kubectl("create", "namespace", namespace);

const services = [];
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
  const targets = [sqlite, kube];
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
  const scale = Number(args.scale);
  if (scale > 0) await measureScale(scale);
} finally {
  await Promise.all(services.map((s) => s.stop()));
  execFileSync(join(shared, "kubernetes", "kube-down"), [kubeDir], { stdio: "ignore" });
}

/** N keys × 3 versions, N aliases, N grants into a namespace; then a fresh store's start. */
async function measureScale(n) {
  const { loadKubeConfig, storeSecrets, KubernetesKeyStore } = await import(
    join(root, "dist/src/bench/kubernetesStore.js")
  );
  const ns = "keyhaven-scale";
  kubectl("create", "namespace", ns);
  const kc = loadKubeConfig(kubeconfig);
  const writer = await KubernetesKeyStore.open(storeSecrets(kc, ns));
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const keyId = randomUUID();
        const key = {
          keyId,
          arn: `arn:aws:kms:us-east-1:000000000000:key/${keyId}`,
          createdAt: Date.now(),
          description: "",
          keySpec: "SYMMETRIC_DEFAULT",
          keyUsage: "ENCRYPT_DECRYPT",
          origin: "AWS_KMS",
          state: "Enabled",
          policy: ADMINISTRATOR_POLICY,
          tags: [],
          currentMaterialVersion: 3,
        };
        const material = (version) => ({
          keyId,
          version,
          createdAt: Date.now(),
          wrapped: randomBytes(61),
          materialId: randomBytes(32).toString("hex"),
        });
        await writer.createKey(key, material(1));
        await writer.addMaterial(material(2));
        await writer.addMaterial(material(3));
        await writer.createAlias({
          name: `alias/scale-${i}`,
          targetKeyId: keyId,
          createdAt: 1,
          updatedAt: 1,
        });
        await writer.createGrant({
          grantId: randomBytes(32).toString("hex"),
          keyId,
          granteePrincipal: "arn:aws:iam::000000000000:role/app",
          issuingAccount: "arn:aws:iam::000000000000:root",
          operations: ["Encrypt", "Decrypt"],
          createdAt: 1,
        });
      }
    }),
  );
  await writer.close();
  console.log(
    `scale: wrote ${n} keys (3 versions), ${n} aliases, ${n} grants in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const reader = await KubernetesKeyStore.open(storeSecrets(kc, ns));
  const ms = performance.now() - t0;
  globalThis.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(
    `scale: a fresh replica lists ${3 * n} objects into its cache in ${(ms / 1000).toFixed(1)} s; cache heap ${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB${globalThis.gc ? "" : " (run with --expose-gc for a cleaner figure)"}`,
  );
  await reader.close();
}
