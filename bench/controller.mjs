/**
 * Operator benchmark: time to bring N KmsKeys to Ready, and the controller's memory
 * with M keys, against the loopback fake API server (test/kube/httpApiServer.ts,
 * through the real @kubernetes/client-node) and a real key service (a child
 * `keyhaven serve`). Baseline in the same run: the same N keys created by a bare
 * loop of CreateKey calls with the same concurrency, so the ratio shows what the
 * operator adds on top of the key service's own work.
 *
 *   npm run build && node --expose-gc bench/controller.mjs [--keys 1000] [--memory-keys 10000] [--workers 16]
 *
 * Prints the figures and API calls per key (Kubernetes and KMS). Never a pass/fail gate.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "1000" },
    "memory-keys": { type: "string", default: "10000" },
    workers: { type: "string", default: "16" },
  },
});
const N = Number(args.keys);
const M = Number(args["memory-keys"]);
const WORKERS = Number(args.workers);
const root = resolve(import.meta.dirname, "..");
const out = join(root, ".tmp", "bench-controller");

// The fake API server lives with the tests: compile them next to src once.
// (tsc emits even when files other than these have type errors; those are not this bench's concern.)
spawnSync(
  process.execPath,
  [
    join(root, "node_modules/typescript/bin/tsc"),
    "-p",
    join(root, "tsconfig.json"),
    "--noEmit",
    "false",
    "--outDir",
    out,
    "--sourceMap",
    "false",
  ],
  { stdio: "ignore" },
);
const { startHttpApiServer, kubeconfigFor } = await import(join(out, "test/kube/httpApiServer.js"));
const { clientNodeCluster, loadKubeConfig } = await import(
  join(out, "src/kube/clientNodeCluster.js")
);
const { Manager } = await import(join(out, "src/controller/manager.js"));
const { createKmsClient, countKmsCalls } = await import(join(out, "src/controller/kms.js"));
const { ControllerMetrics } = await import(join(out, "src/controller/runtime/metrics.js"));
const { CreateKeyCommand } = await import("@aws-sdk/client-kms");

const dir = mkdtempSync(join(tmpdir(), "keyhaven-bench-"));
const credential = {
  accessKeyId: `AKIABENCH${randomBytes(6).toString("hex").toUpperCase()}`,
  secretAccessKey: randomBytes(30).toString("base64"),
};
writeFileSync(
  join(dir, "credentials.yaml"),
  `credentials:\n  - accessKeyId: ${credential.accessKeyId}\n    secretAccessKey: "${credential.secretAccessKey}"\n    principal: arn:aws:iam::000000000000:user/admin\n    policies:\n      - {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}\n`,
);

async function startKeyService(data) {
  const child = spawn(
    process.execPath,
    [
      join(root, "dist/src/main.js"),
      "serve",
      "--data",
      data,
      "--listen",
      "127.0.0.1:0",
      "--credentials",
      join(dir, "credentials.yaml"),
      "--log-level",
      "info",
      "--audit-log",
      join(data, "audit.log"),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise((resolveUrl, reject) => {
    child.once("exit", (code) => reject(new Error(`keyhaven serve exited (${code})`)));
    createInterface(child.stdout).on("line", (line) => {
      const m = /"url":"([^"]+)"/.exec(line);
      if (m) resolveUrl(m[1]);
    });
  });
  return { url, stop: () => new Promise((r) => (child.once("exit", r), child.kill("SIGTERM"))) };
}

const heap = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};

async function bringToReady(count, { historyLimit } = {}) {
  const ks = await startKeyService(mkdtempSync(join(dir, "data-")));
  const fake = await startHttpApiServer({
    crdsDir: join(root, "crds"),
    ...(historyLimit && { historyLimit }),
  });
  const kubeconfig = join(dir, `kubeconfig-${fake.url.split(":").pop()}`);
  writeFileSync(kubeconfig, kubeconfigFor(fake.url));
  for (let i = 0; i < count; i++)
    fake.api.create("kmskeys", `ns${i % 10}`, {
      apiVersion: "keyhaven.dev/v1alpha1",
      kind: "KmsKey",
      metadata: { name: `key-${i}` },
      spec: { description: `bench ${i}` },
    });
  const heapBefore = heap();
  const kms = createKmsClient({ endpoint: ks.url, region: "us-east-1", credentials: credential });
  const calls = countKmsCalls(kms);
  const manager = new Manager({
    cluster: clientNodeCluster(loadKubeConfig({ kubeconfig })),
    kms,
    metrics: new ControllerMetrics(),
    workers: WORKERS,
    leaderElection: { namespace: "keyhaven-system", identity: "bench" },
  });
  const stop = new globalThis.AbortController();
  const started = performance.now();
  const run = manager.run(stop.signal);
  // Follow Ready through a watch on the fake (listing N objects every few ms would cost more than the operator).
  const ready = new Set();
  let allReady;
  const done = new Promise((r) => (allReady = r));
  const unwatch = fake.api.watch("kmskeys", "", (e) => {
    if (e.object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
      ready.add(e.object.metadata.uid);
    if (ready.size === count) allReady();
  });
  await done;
  unwatch();
  const seconds = (performance.now() - started) / 1000;
  const heapAfter = heap();
  const kubeRequests = [...fake.requests].filter(([k]) => !k.includes("leases"));
  const kube = kubeRequests.reduce((n, [, v]) => n + v, 0);
  const kmsTotal = [...calls.values()].reduce((a, b) => a + b, 0);
  stop.abort();
  await run;
  kms.destroy();
  await fake.stop();
  await ks.stop();
  return {
    seconds,
    kube,
    kubeRequests,
    kmsTotal,
    calls: [...calls],
    heapDelta: heapAfter - heapBefore,
  };
}

async function baseline(count) {
  const ks = await startKeyService(mkdtempSync(join(dir, "data-")));
  const kms = createKmsClient({ endpoint: ks.url, region: "us-east-1", credentials: credential });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (next < count) {
        next++;
        await kms.send(new CreateKeyCommand({ Description: "baseline" }));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  kms.destroy();
  await ks.stop();
  return seconds;
}

const base = await baseline(N);
const r = await bringToReady(N);
console.log(
  `\n${N} KmsKeys to Ready: ${r.seconds.toFixed(2)} s (${(N / r.seconds).toFixed(0)} keys/s), ${WORKERS} workers`,
);
console.log(
  `  baseline (bare CreateKey loop, same concurrency): ${base.toFixed(2)} s; ratio operator/baseline ${(r.seconds / base).toFixed(2)}`,
);
console.log(
  `  Kubernetes API calls per key: ${(r.kube / N).toFixed(2)} (${r.kubeRequests.map(([k, v]) => `${k} ${v}`).join(", ")})`,
);
console.log(
  `  KMS API calls per key: ${(r.kmsTotal / N).toFixed(2)} (${r.calls.map(([k, v]) => `${k} ${v}`).join(", ")})`,
);
if (M > 0) {
  const m = await bringToReady(M, { historyLimit: 1000 });
  console.log(
    `\n${M} KmsKeys to Ready: ${m.seconds.toFixed(1)} s; controller heap growth ${(m.heapDelta / 1048576).toFixed(1)} MiB (${(m.heapDelta / M / 1024).toFixed(2)} KiB per key), process RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (includes the fake API server)`,
  );
}
