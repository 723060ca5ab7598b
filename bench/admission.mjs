/**
 * Admission latency: AdmissionReviews for an opted-in pod (data key + an encrypted env
 * value + a command to wrap, i.e. the full mutation) sent at a fixed 200 requests/s over
 * HTTPS (keep-alive) to the real webhook, against a bare HTTPS echo of the same body in
 * the same run, interleaved A B A B; per-response times recorded with hrtime (sub-ms).
 * Goal: webhook p99 < 5 ms. Never part of the test pass/fail.
 *
 *   npm run build && node bench/admission.mjs [--rate 200] [--seconds 10] [--rounds 3]
 */
import { Agent, request } from "node:https";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { spawnServer } from "./lib/servers.mjs";
import { median, quantile } from "./lib/harness.mjs";
import { reconcileCertificates } from "../dist/src/bench/webhook.js";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);

const settings = {
  kmsEndpoint: "https://keyhaven.keyhaven.svc:8443",
  stsEndpoint: "https://keyhaven.keyhaven.svc:8443",
  region: "us-east-1",
  roleArn: "arn:aws:iam::000000000000:role/{namespace}/{serviceAccount}",
  agentImage: "ghcr.io/keyhaven/keyhaven:0.1.0",
  tokenExpirationSeconds: 600,
  refreshIntervalSeconds: 300,
};

function review(uid) {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "shop",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          generateName: "web-7d4b9c8f6-",
          labels: { app: "web", "pod-template-hash": "7d4b9c8f6" },
          annotations: { "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": "alias/shop/web" },
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: "web-7d4b9c8f6",
              uid: "u",
              controller: true,
            },
          ],
        },
        spec: {
          serviceAccountName: "web",
          securityContext: { runAsUser: 1000 },
          containers: [
            {
              name: "app",
              image: "registry.example/web:1",
              command: ["/app/server"],
              args: ["--port", "8080"],
              env: [{ name: "DB_PASSWORD", value: "keyhaven:AQICAHhQ3kF0ZXN0Y2lwaGVydGV4dA==" }],
              resources: { requests: { cpu: "100m", memory: "128Mi" } },
            },
          ],
        },
      },
      oldObject: null,
      dryRun: false,
    },
  });
}

/** Open-loop load at a fixed rate: one request every 1/RATE s, whatever the answers do. */
async function load(target, ca, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca, servername: "localhost" });
  const url = new URL(target.url);
  const times = [];
  let errors = 0;
  const cpuBefore = await target.cpuMicros();
  const total = Math.round(RATE * seconds);
  const start = process.hrtime.bigint();
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round((i * 1e9) / RATE));
    // Timers, not a spin: the load generator must not steal the servers' CPU.
    const wait = Number(due - process.hrtime.bigint()) / 1e6;
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
    const body = review(`uid-${i}`);
    const sent = process.hrtime.bigint();
    pending.push(
      new Promise((resolve) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: "/mutate-pods",
            method: "POST",
            agent,
            headers: {
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
            },
          },
          (res) => {
            const chunks = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => {
              times.push(Number(process.hrtime.bigint() - sent) / 1e6);
              const answer = JSON.parse(Buffer.concat(chunks).toString("utf8"));
              if (
                res.statusCode !== 200 ||
                answer.response?.uid !== `uid-${i}` ||
                !answer.response.allowed
              )
                errors++;
              resolve();
            });
          },
        );
        req.on("error", () => {
          errors++;
          resolve();
        });
        req.end(body);
      }),
    );
  }
  await Promise.all(pending);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuAfter = await target.cpuMicros();
  agent.destroy();
  times.sort((a, b) => a - b);
  return {
    requestsPerSecond: times.length / elapsed,
    p50: quantile(times, 0.5),
    p99: quantile(times, 0.99),
    max: times.at(-1),
    errors,
    cpuMicrosPerRequest: (cpuAfter - cpuBefore) / total,
  };
}

const d = reconcileCertificates(undefined, new Date(), ["localhost"]);
const { tlsCert: cert, tlsKey: key, caBundle: ca } = d.certificates;
const serverModule = fileURLToPath(new URL("./admission-server.mjs", import.meta.url));
const echo = await spawnServer(serverModule, { mode: "echo", cert, key }, { name: "https-echo" });
const webhook = await spawnServer(
  serverModule,
  { mode: "webhook", cert, key, settings },
  { name: "webhook" },
);
const f = (v) => v.toFixed(3);
const line = (name, r) =>
  `${name.padEnd(10)} ${r.requestsPerSecond.toFixed(0)} req/s  p50 ${f(r.p50)} ms  p99 ${f(r.p99)} ms  max ${f(r.max)} ms  errors ${r.errors}  server CPU ${r.cpuMicrosPerRequest.toFixed(0)} µs/req`;
try {
  await load(echo, ca, 2); // warm-up
  await load(webhook, ca, 2);
  const runs = { echo: [], webhook: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, target] of [
      ["echo", echo],
      ["webhook", webhook],
    ]) {
      const r = await load(target, ca, SECONDS);
      runs[name].push(r);
      console.log(`round ${round}/${ROUNDS} ${line(name, r)}`);
    }
  }
  const med = (list, k) => median(list.map((r) => r[k]));
  const summary = (list) => ({
    requestsPerSecond: med(list, "requestsPerSecond"),
    p50: med(list, "p50"),
    p99: med(list, "p99"),
    max: Math.max(...list.map((r) => r.max)),
    errors: list.reduce((n, r) => n + r.errors, 0),
    cpuMicrosPerRequest: med(list, "cpuMicrosPerRequest"),
  });
  const e = summary(runs.echo);
  const w = summary(runs.webhook);
  console.log(
    `\nAdmission at ${RATE} req/s over HTTPS, ${ROUNDS} rounds × ${SECONDS} s (medians):`,
  );
  console.log(line("echo", e));
  console.log(line("webhook", w));
  console.log(
    `ratio webhook/echo: p50 ${(w.p50 / e.p50).toFixed(2)}×, p99 ${(w.p99 / e.p99).toFixed(2)}×, CPU ${(w.cpuMicrosPerRequest / e.cpuMicrosPerRequest).toFixed(2)}×; goal p99 < 5 ms: ${w.p99 < 5 ? "met" : "NOT met"}`,
  );
} finally {
  await echo.stop();
  await webhook.stop();
}
