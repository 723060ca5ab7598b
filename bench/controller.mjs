/**
 * Operator benchmark: time to bring N KmsKeys to Ready, and the controller's memory
 * with M keys, against the loopback fake API server (test/kube/httpApiServer.ts,
 * through the real @kubernetes/client-node) and a real key service (a child
 * `keyhaven serve`). Baseline in the same run: the same N keys created by a bare
 * loop of CreateKey calls with the same concurrency, so the ratio shows what the
 * operator adds on top of the key service's own work. The same against the real API
 * server: bench/controller-cluster.mjs.
 *
 *   npm run build && node --expose-gc bench/controller.mjs [--keys 1000] [--memory-keys 10000] [--workers 16]
 *
 * Prints the figures and API calls per key (Kubernetes and KMS). Never a pass/fail gate.
 */
import { parseArgs } from "node:util";
import { baseline, loadModules, onFakeApiServer } from "./lib/controllerBench.mjs";

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
const m = await loadModules();

const heap = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};

const base = await baseline(m, N, WORKERS);
const r = await onFakeApiServer(m, { count: N, workers: WORKERS, heap });
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
  const mem = await onFakeApiServer(m, { count: M, workers: WORKERS, heap, historyLimit: 1000 });
  console.log(
    `\n${M} KmsKeys to Ready: ${mem.seconds.toFixed(1)} s; controller heap growth ${(mem.heapDelta / 1048576).toFixed(1)} MiB (${(mem.heapDelta / M / 1024).toFixed(2)} KiB per key), process RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (includes the fake API server)`,
  );
}
