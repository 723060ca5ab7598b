/**
 * Admission latency as the real API server sees it: Pod creates against kube-apiserver
 * v1.32 (../shared/kubernetes/kube-up) in a namespace where the webhook is called (the
 * real `keyhaven controller` program, registered by URL like the chart's configuration)
 * and, interleaved in the same run, in a namespace where it is not. Per-create times
 * from hrtime on the client; the API server's own histogram of the webhook call
 * (apiserver_admission_webhook_admission_duration_seconds) from its /metrics.
 * Never part of the test pass/fail.
 *
 *   npm run build && node bench/admission-cluster.mjs [--pods 200] [--rounds 3] [--concurrency 4]
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { median, quantile } from "./lib/harness.mjs";

const { values } = parseArgs({
  options: {
    pods: { type: "string", default: "200" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "4" },
  },
});
const PODS = Number(values.pods);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const shared = resolve(process.env.KEYHAVEN_SHARED ?? join(root, "..", "shared"));
const dir = mkdtempSync(join(tmpdir(), "keyhaven-bench-kube-"));
await run(join(shared, "kubernetes", "kube-up"), [dir], { timeout: 120_000 });
const env = Object.fromEntries(
  readFileSync(join(dir, "env"), "utf8")
    .split("\n")
    .map((line) => /^export (\w+)=(.*)$/.exec(line))
    .filter(Boolean)
    .map((m) => [m[1], m[2]]),
);
const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: readFileSync(env.KUBE_CA_FILE) });

/** One API call as the admin; resolves with status, parsed body and milliseconds taken. */
function api(method, path, body, contentType = "application/json") {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolveCall, reject) => {
    const sent = process.hrtime.bigint();
    const req = request(
      new URL(path, env.KUBE_APISERVER_URL),
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${env.KUBE_ADMIN_TOKEN}`,
          accept: "application/json",
          ...(text !== undefined && { "content-type": contentType }),
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const ms = Number(process.hrtime.bigint() - sent) / 1e6;
          const raw = Buffer.concat(chunks).toString("utf8");
          let parsed = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            /* /metrics is text */
          }
          resolveCall({ status: res.statusCode, body: parsed, ms });
        });
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

async function must(method, path, body) {
  const res = await api(method, path, body);
  if (res.status >= 300)
    throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const freePort = () =>
  new Promise((done) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });

// The full mutation: token, env, data key, an encrypted env value, a command to wrap.
const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    generateName: "web-",
    labels: { app: "web" },
    annotations: { "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": "alias/shop/web" },
  },
  spec: {
    serviceAccountName: "web",
    securityContext: { runAsUser: 1000 },
    containers: [
      {
        name: "app",
        image: "registry.example/web:1",
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "keyhaven:AQICAHhQ3kF0ZXN0Y2lwaGVydGV4dA==" }],
      },
    ],
  },
};

let controller;
try {
  // The controller's leader (which issues the webhook's certificate) needs its CRDs.
  for (const file of readdirSync(join(root, "crds")))
    await must(
      "POST",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      parse(readFileSync(join(root, "crds", file), "utf8")),
    );
  const release = "keyhaven-system";
  for (const [name, labels] of [
    [release, {}],
    ["with-webhook", { "keyhaven.dev/injection": "enabled" }],
    ["without-webhook", {}],
  ]) {
    await must("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, labels },
    });
    await must("POST", `/api/v1/namespaces/${name}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "web" },
    });
  }
  const port = await freePort();
  await must("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "keyhaven" },
    webhooks: [
      {
        name: "pods.keyhaven.dev",
        admissionReviewVersions: ["v1"],
        clientConfig: { url: `https://127.0.0.1:${port}/mutate-pods` },
        rules: [
          {
            operations: ["CREATE"],
            apiGroups: [""],
            apiVersions: ["v1"],
            resources: ["pods"],
            scope: "Namespaced",
          },
        ],
        namespaceSelector: {
          matchExpressions: [
            { key: "keyhaven.dev/injection", operator: "In", values: ["enabled"] },
            {
              key: "kubernetes.io/metadata.name",
              operator: "NotIn",
              values: [release, "kube-system"],
            },
          ],
        },
        matchConditions: [
          {
            name: "opted-in",
            expression:
              "has(object.metadata.annotations) && 'keyhaven.dev/inject' in object.metadata.annotations && object.metadata.annotations['keyhaven.dev/inject'] == 'true'",
          },
        ],
        sideEffects: "None",
        timeoutSeconds: 5,
        failurePolicy: "Fail",
        reinvocationPolicy: "IfNeeded",
      },
    ],
  });
  controller = spawn(
    process.execPath,
    [
      join(root, "dist", "src", "main.js"),
      "controller",
      "--kubeconfig",
      env.KUBECONFIG,
      "--namespace",
      release,
      "--metrics-listen",
      "127.0.0.1:0",
      "--webhook-listen",
      `127.0.0.1:${port}`,
      "--kms-endpoint",
      "https://keyhaven.keyhaven-system.svc:8443",
      "--leader-elect",
      "false",
      "--log-level",
      "warn",
    ],
    {
      env: {
        PATH: process.env.PATH,
        AWS_ACCESS_KEY_ID: "AKIABENCH",
        AWS_SECRET_ACCESS_KEY: "bench",
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let controllerLog = "";
  createInterface(controller.stdout).on("line", (line) => (controllerLog += `${line}\n`));
  // Until the leader has set the caBundle and the API server calls the webhook.
  for (let deadline = Date.now() + 60_000; ;) {
    const res = await api("POST", "/api/v1/namespaces/with-webhook/pods?dryRun=All", pod);
    if (res.status === 201 && res.body.metadata.annotations["keyhaven.dev/status"] === "injected")
      break;
    if (Date.now() > deadline)
      throw new Error(`the webhook never answered: ${JSON.stringify(res.body)}\n${controllerLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  /** Creates PODS pods in `namespace`, CONCURRENCY at a time; per-create times in ms. */
  async function creates(namespace, count) {
    const times = [];
    let errors = 0;
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < count) {
          const res = await api("POST", `/api/v1/namespaces/${namespace}/pods`, pod);
          const injected = res.body?.metadata?.annotations?.["keyhaven.dev/status"] === "injected";
          if (res.status !== 201 || injected !== (namespace === "with-webhook")) errors++;
          times.push(res.ms);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    times.sort((a, b) => a - b);
    return {
      p50: quantile(times, 0.5),
      p99: quantile(times, 0.99),
      perSecond: count / seconds,
      errors,
    };
  }

  console.log(
    `admission on the real API server ${new Date().toISOString()}: node ${process.version}, ${cpus().length} cpus, ` +
      `${ROUNDS} rounds × ${PODS} pod creates per namespace, ${CONCURRENCY} in flight, load average ${loadavg()[0].toFixed(2)}`,
  );
  await creates("without-webhook", 20); // warm-up
  await creates("with-webhook", 20);
  const runs = { without: [], with: [] };
  for (let round = 1; round <= ROUNDS; round++)
    for (const [key, ns] of [
      ["without", "without-webhook"],
      ["with", "with-webhook"],
    ]) {
      const r = await creates(ns, PODS);
      runs[key].push(r);
      console.log(
        `  round ${round}/${ROUNDS} ${key.padEnd(7)} webhook: p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ${r.perSecond.toFixed(0)} creates/s  errors ${r.errors}`,
      );
    }
  const med = (list, k) => median(list.map((r) => r[k]));
  const w = { p50: med(runs.with, "p50"), p99: med(runs.with, "p99") };
  const o = { p50: med(runs.without, "p50"), p99: med(runs.without, "p99") };
  const errors = [...runs.with, ...runs.without].reduce((n, r) => n + r.errors, 0);

  // The API server's own view of the webhook call (its histogram; bucket bounds in s).
  const metrics = (await api("GET", "/metrics")).body;
  const series = (suffix) =>
    metrics
      .split("\n")
      .filter(
        (l) =>
          l.startsWith(`apiserver_admission_webhook_admission_duration_seconds_${suffix}{`) &&
          l.includes('name="pods.keyhaven.dev"'),
      );
  const sum = series("sum").reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  const count = series("count").reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  const buckets = new Map();
  for (const l of series("bucket")) {
    const le = /le="([^"]+)"/.exec(l)[1];
    buckets.set(le, (buckets.get(le) ?? 0) + Number(l.split(" ").pop()));
  }
  const bound = (q) => [...buckets].find(([, n]) => n >= q * count)?.[0] ?? "+Inf";

  console.log(
    `\nPod create latency, medians of ${ROUNDS} rounds (client-side, includes etcd write):`,
  );
  console.log(`  without webhook  p50 ${o.p50.toFixed(2)} ms  p99 ${o.p99.toFixed(2)} ms`);
  console.log(`  with webhook     p50 ${w.p50.toFixed(2)} ms  p99 ${w.p99.toFixed(2)} ms`);
  console.log(
    `  ratio with/without: p50 ${(w.p50 / o.p50).toFixed(2)}×, p99 ${(w.p99 / o.p99).toFixed(2)}×`,
  );
  console.log(
    `API server's webhook call (apiserver_admission_webhook_admission_duration_seconds, ${count} calls): ` +
      `mean ${((sum / count) * 1000).toFixed(2)} ms, p50 ≤ ${bound(0.5)} s, p99 ≤ ${bound(0.99)} s`,
  );
  if (errors > 0)
    console.log(
      `\nWARNING: ${errors} creates failed or were mutated wrongly; the figures are not valid.`,
    );
} finally {
  controller?.kill("SIGTERM");
  agent.destroy();
  await run(join(shared, "kubernetes", "kube-down"), [dir], { timeout: 60_000 }).catch(() => {});
}
