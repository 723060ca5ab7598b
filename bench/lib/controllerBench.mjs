/**
 * What the operator benchmarks share: the compiled sources (src/ and the test fakes,
 * built next to each other once), a real key service as a child `keyhaven serve`, the
 * bare CreateKey loop baseline, and `bringToReady`: the in-process Manager with the real
 * @kubernetes/client-node bringing pre-created KmsKeys to Ready against any API server
 * (the loopback fake or kube-up), followed through the Manager's own informer.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

export const root = resolve(import.meta.dirname, "../..");
const out = join(root, ".tmp", "bench-controller");

/** Compiles src/ and test/ into .tmp/bench-controller once and imports what the benches use. */
export async function loadModules() {
  // tsc emits even when files other than these have type errors; those are not the bench's concern.
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
  const {
    Manager,
    createKmsClient,
    countKmsCalls,
    ControllerMetrics,
    clientNodeCluster,
    loadKubeConfig,
    isReady,
  } = await import(join(out, "src/bench/controller.js"));
  const { startHttpApiServer, kubeconfigFor } = await import(join(out, "test/support/bench.js"));
  return {
    Manager,
    createKmsClient,
    countKmsCalls,
    ControllerMetrics,
    clientNodeCluster,
    loadKubeConfig,
    isReady,
    startHttpApiServer,
    kubeconfigFor,
  };
}

export const dir = mkdtempSync(join(tmpdir(), "keyhaven-bench-"));
export const credential = {
  accessKeyId: `AKIABENCH${randomBytes(6).toString("hex").toUpperCase()}`,
  secretAccessKey: randomBytes(30).toString("base64"),
};
writeFileSync(
  join(dir, "credentials.yaml"),
  `credentials:\n  - accessKeyId: ${credential.accessKeyId}\n    secretAccessKey: "${credential.secretAccessKey}"\n    principal: arn:aws:iam::000000000000:user/admin\n    policies:\n      - {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}\n`,
  { mode: 0o600 },
);

/** A child `keyhaven serve` on a fresh data folder (audit lines to a file), with `extraArgs`. */
export async function startKeyService(extraArgs = []) {
  const data = mkdtempSync(join(dir, "data-"));
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
      ...extraArgs,
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
  return {
    url,
    pid: child.pid,
    stop: () => new Promise((r) => (child.once("exit", r), child.kill("SIGTERM"))),
  };
}

/** The same number of keys made by a bare loop of CreateKey calls with `workers` in flight. */
export async function baseline(m, count, workers) {
  const { CreateKeyCommand } = await import("@aws-sdk/client-kms");
  const ks = await startKeyService();
  const kms = m.createKmsClient({ endpoint: ks.url, region: "us-east-1", credentials: credential });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
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

/**
 * Runs the Manager (leader election on, 16 workers by default) against the API server of
 * `kubeconfig`, where `count` KmsKeys already wait, until every one is Ready; returns the
 * seconds from start, the KMS calls and the heap growth across the run (`heap()` is
 * called before and after, with the objects in the caches).
 */
export async function bringToReady(m, { kubeconfig, count, workers, heap = () => 0 }) {
  const ks = await startKeyService();
  const heapBefore = heap();
  const kms = m.createKmsClient({ endpoint: ks.url, region: "us-east-1", credentials: credential });
  const calls = m.countKmsCalls(kms);
  const manager = new m.Manager({
    cluster: m.clientNodeCluster(m.loadKubeConfig(kubeconfig)),
    kms,
    metrics: new m.ControllerMetrics(),
    workers,
    leaderElection: { namespace: "keyhaven-system", identity: "bench" },
  });
  const ready = new Set();
  let allReady;
  const done = new Promise((r) => (allReady = r));
  manager.informer("KmsKey").on((_event, obj) => {
    if (m.isReady(obj.status?.conditions)) ready.add(obj.metadata.uid);
    if (ready.size === count) allReady();
  });
  const stop = new globalThis.AbortController();
  const started = performance.now();
  const run = manager.run(stop.signal);
  await done;
  const seconds = (performance.now() - started) / 1000;
  const heapAfter = heap();
  const kmsTotal = [...calls.values()].reduce((a, b) => a + b, 0);
  stop.abort();
  await run;
  kms.destroy();
  await ks.stop();
  return { seconds, kmsTotal, calls: [...calls], heapDelta: heapAfter - heapBefore };
}

/** A KmsKey as the benches create them: key-<i> in namespace ns<i % 10>. */
export const benchKey = (i) => ({
  apiVersion: "keyhaven.dev/v1alpha1",
  kind: "KmsKey",
  metadata: { name: `key-${i}`, namespace: `ns${i % 10}` },
  spec: { description: `bench ${i}` },
});

/** `count` keys to Ready against the loopback fake; Kubernetes calls counted by the fake. */
export async function onFakeApiServer(m, { count, workers, heap, historyLimit }) {
  const fake = await m.startHttpApiServer({
    crdsDir: join(root, "crds"),
    ...(historyLimit && { historyLimit }),
  });
  const kubeconfig = join(dir, `kubeconfig-${fake.url.split(":").pop()}`);
  writeFileSync(kubeconfig, m.kubeconfigFor(fake.url));
  for (let i = 0; i < count; i++) {
    const obj = benchKey(i);
    fake.api.create("kmskeys", obj.metadata.namespace, obj);
  }
  const r = await bringToReady(m, { kubeconfig, count, workers, heap });
  const kubeRequests = [...fake.requests].filter(([k]) => !k.includes("leases"));
  await fake.stop();
  return { ...r, kubeRequests, kube: kubeRequests.reduce((n, [, v]) => n + v, 0) };
}
