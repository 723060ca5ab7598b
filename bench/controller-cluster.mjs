/**
 * Operator benchmark on the real API server: N KmsKeys (created beforehand, 10
 * namespaces) brought to Ready by the in-process Manager with the real client-node
 * against kube-up (etcd + kube-apiserver v1.32, ../shared/kubernetes), and a real key
 * service. Kubernetes calls per key are counted from the API server's audit log (every
 * request after the start, Leases apart). In the same run, as baselines: the same N keys
 * against the loopback fake API server, and a bare CreateKey loop.
 *
 *   npm run build && node bench/controller-cluster.mjs [--keys 1000] [--workers 16]
 *   (or node bench/run.mjs --controller-cluster)
 *
 * Never a pass/fail gate; figures from a shared 2-core machine move with its load.
 */
import { join } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
  baseline,
  benchKey,
  bringToReady,
  loadModules,
  onFakeApiServer,
  root,
} from "./lib/controllerBench.mjs";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "1000" },
    workers: { type: "string", default: "16" },
  },
});
const N = Number(args.keys);
const WORKERS = Number(args.workers);
// The compiled test support finds ../shared from the checkout, not from .tmp/.
process.env.KEYHAVEN_SHARED ??= join(root, "..", "shared");
const m = await loadModules();
const out = join(root, ".tmp", "bench-controller");
const { startControlPlane, createNamespace, applyCrds, auditArgs, readAudit } = await import(
  join(out, "test/support/bench.js")
);

/** N keys to Ready on kube-up; Kubernetes calls from the audit log. */
async function onKubeUp(count) {
  const audit = auditArgs();
  const plane = await startControlPlane({ apiserverArgs: audit.args });
  try {
    await applyCrds(plane, join(root, "crds"));
    await createNamespace(plane, "keyhaven-system");
    for (let n = 0; n < 10; n++) await createNamespace(plane, `ns${n}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const obj = benchKey(next++);
          const res = await plane.request(
            "POST",
            `/apis/keyhaven.dev/v1alpha1/namespaces/${obj.metadata.namespace}/kmskeys`,
            obj,
          );
          if (res.status !== 201) throw new Error(`create: ${JSON.stringify(res.body)}`);
        }
      }),
    );
    const before = readAudit(audit.log).length;
    const r = await bringToReady(m, { kubeconfig: plane.kubeconfig, count, workers: WORKERS });
    const byRequest = new Map();
    for (const e of readAudit(audit.log).slice(before)) {
      if (e.resource.startsWith("leases")) continue;
      const label = `${e.verb} ${e.resource}`;
      byRequest.set(label, (byRequest.get(label) ?? 0) + 1);
    }
    const kube = [...byRequest.values()].reduce((a, b) => a + b, 0);
    return { ...r, kube, kubeRequests: [...byRequest] };
  } finally {
    await plane.stop();
  }
}

const load = loadavg()[0];
const base = await baseline(m, N, WORKERS);
const fake = await onFakeApiServer(m, { count: N, workers: WORKERS });
const real = await onKubeUp(N);
const perKey = (r) =>
  `Kubernetes ${(r.kube / N).toFixed(2)} (${r.kubeRequests.map(([k, v]) => `${k} ${v}`).join(", ")}), KMS ${(r.kmsTotal / N).toFixed(2)}`;
console.log(
  `\n${N} KmsKeys to Ready, ${WORKERS} workers (load average ${load.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end):`,
);
console.log(
  `  real API server (kube-up v1.32): ${real.seconds.toFixed(2)} s (${(N / real.seconds).toFixed(0)} keys/s)`,
);
console.log(
  `  loopback fake API server:        ${fake.seconds.toFixed(2)} s (${(N / fake.seconds).toFixed(0)} keys/s); ratio real/fake ${(real.seconds / fake.seconds).toFixed(2)}`,
);
console.log(
  `  bare CreateKey loop:             ${base.toFixed(2)} s; ratio real/baseline ${(real.seconds / base).toFixed(2)}`,
);
console.log(`  calls per key, real: ${perKey(real)}`);
console.log(`  calls per key, fake: ${perKey(fake)}`);
