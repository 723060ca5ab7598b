/**
 * `keyhaven kms-plugin` (docs/encryption-at-rest.md), two measurements in one run:
 *
 *   1. Encrypt and Decrypt of a 32-byte DEK seed over the plugin's Unix socket, timed
 *      call by call (p50/p99 at `--concurrency` calls in flight), against a bare
 *      grpc-js echo service on another Unix socket: the gRPC floor. The plugin adds the
 *      key service's Encrypt/Decrypt (HTTP + SigV4 + AES-GCM) on top.
 *   2. Secret create and get through a real API server (kube-up) whose
 *      EncryptionConfiguration uses the plugin, against one using `identity`,
 *      interleaved A B A B for `--rounds` rounds, the median ratio reported.
 *
 *   npm run build && node bench/kms-plugin.mjs [--calls 2000] [--concurrency 4]
 *        [--rounds 3] [--duration 5] [--connections 8]
 *
 * Numbers are information, never a pass/fail gate.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify, parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { median, quantile } from "./lib/harness.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "8" },
  },
});
const here = import.meta.dirname;
const root = join(here, "..");
const kubeUp = join(root, "..", "shared", "kubernetes", "kube-up");
const kubeDown = join(root, "..", "shared", "kubernetes", "kube-down");
const run = promisify(execFile);
const tmp = (prefix) => mkdtempSync(join(tmpdir(), prefix));

// --- the key service and the plugin ---------------------------------------------------
const region = "us-east-1";
const account = "000000000000";
const credential = {
  accessKeyId: "AKIABENCHKMSPLUGIN01",
  secretAccessKey: randomBytes(30).toString("base64"),
};
const keyhaven = await spawnServer(
  join(here, "servers/keyService.mjs"),
  { dataDir: tmp("keyhaven-bench-kmsplugin-"), credential, region, account },
  { name: "keyhaven" },
);
const target = { url: keyhaven.url, region, credential };
const created = await callKms(target, "CreateKey", {});
if (created.status !== 200) throw new Error(`CreateKey: ${JSON.stringify(created.json)}`);
const keyArn = created.json.KeyMetadata.Arn;

const pluginSocket = join(tmp("keyhaven-bench-sock-"), "kms.sock");
const plugin = spawn(
  process.execPath,
  [
    join(root, "dist/src/main.js"),
    "kms-plugin",
    "--listen",
    `unix://${pluginSocket}`,
    "--key-id",
    keyArn,
    "--cluster-name",
    "bench",
    "--log-level",
    "warn",
  ],
  {
    env: {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL_KMS: keyhaven.url,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credential.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
    },
    stdio: ["ignore", "inherit", "inherit"],
  },
);
// Also when the run fails half-way.
process.on("exit", () => plugin.kill("SIGTERM"));

// --- the gRPC floor: an echo service with the same messages ----------------------------
const definition = loadSync(join(root, "src/kmsplugin/api.proto"), { keepCase: true });
const Service = grpc.loadPackageDefinition(definition).v2.KeyManagementService;
const echoSocket = join(tmp("keyhaven-bench-sock-"), "echo.sock");
const echo = new grpc.Server();
echo.addService(Service.service, {
  Status: (_call, cb) => cb(null, { version: "v2", healthz: "ok", key_id: "echo" }),
  Encrypt: (call, cb) => cb(null, { ciphertext: call.request.plaintext, key_id: "echo" }),
  Decrypt: (call, cb) => cb(null, { plaintext: call.request.ciphertext }),
});
await new Promise((resolve, reject) =>
  echo.bindAsync(`unix://${echoSocket}`, grpc.ServerCredentials.createInsecure(), (err) =>
    err ? reject(err) : resolve(),
  ),
);

const client = (socket) => {
  const c = new Service(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = (method, req) =>
    new Promise((resolve, reject) =>
      c[method](req, { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  return { call, close: () => c.close() };
};

async function waitForPlugin() {
  // A client made before the socket exists backs off for seconds: wait for the file first.
  for (let i = 0; i < 300 && !existsSync(pluginSocket); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const c = client(pluginSocket);
  const s = await c.call("Status", {});
  if (s.healthz !== "ok") throw new Error(`kms-plugin is not healthy: ${s.healthz}`);
  return c;
}
const pluginClient = await waitForPlugin();
const echoClient = client(echoSocket);

/** `calls` calls of `fn`, `concurrency` in flight; per-call times in ms, sorted. */
async function timeCalls(fn, calls, concurrency) {
  const times = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) {
        const t = process.hrtime.bigint();
        await fn();
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  return times.sort((a, b) => a - b);
}

const calls = Number(args.calls);
const concurrency = Number(args.concurrency);
const seed = randomBytes(32);
const sealed = await pluginClient.call("Encrypt", { plaintext: seed, uid: "bench" });
const echoSealed = await echoClient.call("Encrypt", { plaintext: seed, uid: "bench" });
const latency = {};
for (const [name, c, blob] of [
  ["echo", echoClient, echoSealed],
  ["plugin", pluginClient, sealed],
]) {
  await timeCalls(() => c.call("Encrypt", { plaintext: seed, uid: "w" }), 200, concurrency);
  const enc = await timeCalls(
    () => c.call("Encrypt", { plaintext: seed, uid: "bench" }),
    calls,
    concurrency,
  );
  const dec = await timeCalls(
    () => c.call("Decrypt", { ciphertext: blob.ciphertext, key_id: blob.key_id, uid: "bench" }),
    calls,
    concurrency,
  );
  latency[name] = { enc, dec };
}
const fmt = (v) => v.toFixed(3).padStart(7);
console.log(`\nKMS v2 calls over a Unix socket, ${calls} each, ${concurrency} in flight (ms)`);
console.log("               p50      p99    | echo p50  echo p99 | p50 ratio");
for (const op of ["enc", "dec"]) {
  const p = latency.plugin[op];
  const e = latency.echo[op];
  console.log(
    `${op === "enc" ? "Encrypt" : "Decrypt"}      ${fmt(quantile(p, 0.5))}  ${fmt(quantile(p, 0.99))}  | ${fmt(quantile(e, 0.5))}   ${fmt(quantile(e, 0.99))} | ${(quantile(p, 0.5) / quantile(e, 0.5)).toFixed(1)}x`,
  );
}

// --- Secrets through the API server: kms plugin vs identity ------------------------------
async function startPlane(providers) {
  const dir = tmp("keyhaven-bench-kube-");
  const config = join(dir, "encryption.yaml");
  writeFileSync(
    config,
    `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n${providers}`,
  );
  await run(kubeUp, [dir], {
    env: { ...process.env, KUBE_APISERVER_ARGS: `--encryption-provider-config=${config}` },
    timeout: 120_000,
  });
  const env = Object.fromEntries(
    readFileSync(join(dir, "env"), "utf8")
      .split("\n")
      .map((l) => /^export (\w+)=(.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  const agent = new Agent({
    ca: readFileSync(env.KUBE_CA_FILE),
    keepAlive: true,
    maxSockets: Number(args.connections),
  });
  const send = (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        new URL(path, env.KUBE_APISERVER_URL),
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${env.KUBE_ADMIN_TOKEN}`,
            "content-type": "application/json",
            accept: "application/json",
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  await send("POST", "/api/v1/namespaces", { metadata: { name: "bench" } });
  return { dir, send, stop: () => run(kubeDown, [dir]).then(() => agent.destroy()) };
}

/** Creates Secrets for `duration` seconds, then gets them for as long; requests/s of each. */
async function secretLoad(plane, tag) {
  const durationMs = Number(args.duration) * 1000;
  let n = 0;
  let errors = 0;
  const names = [];
  const loop = async (fn) => {
    const end = Date.now() + durationMs;
    let done = 0;
    await Promise.all(
      Array.from({ length: Number(args.connections) }, async () => {
        while (Date.now() < end) {
          const status = await fn();
          if (status >= 300) errors++;
          done++;
        }
      }),
    );
    return done / (durationMs / 1000);
  };
  const create = await loop(() => {
    const name = `${tag}-${n++}`;
    names.push(name);
    return plane.send("POST", "/api/v1/namespaces/bench/secrets", {
      metadata: { name },
      stringData: { value: randomBytes(96).toString("base64") },
    });
  });
  let i = 0;
  const get = await loop(() =>
    plane.send("GET", `/api/v1/namespaces/bench/secrets/${names[i++ % names.length]}`),
  );
  return { create, get, errors };
}

const kmsPlane = await startPlane(
  `      - kms:\n          apiVersion: v2\n          name: keyhaven\n          endpoint: unix://${pluginSocket}\n          timeout: 5s\n      - identity: {}\n`,
);
const identityPlane = await startPlane(`      - identity: {}\n`);
const rows = [];
for (let r = 0; r < Number(args.rounds); r++) {
  const identity = await secretLoad(identityPlane, `r${r}`);
  const kms = await secretLoad(kmsPlane, `r${r}`);
  rows.push({ identity, kms });
  console.log(
    `round ${r + 1}: create ${kms.create.toFixed(0)} vs ${identity.create.toFixed(0)} /s, get ${kms.get.toFixed(0)} vs ${identity.get.toFixed(0)} /s (kms vs identity), errors ${kms.errors + identity.errors}`,
  );
}
const med = (f) => median(rows.map(f));
console.log(
  `\nSecrets through the API server, ${args.connections} connections, ${args.duration} s per phase, median of ${args.rounds} rounds`,
);
console.log(
  `create: kms ${med((x) => x.kms.create).toFixed(0)}/s, identity ${med((x) => x.identity.create).toFixed(0)}/s, ratio ${med((x) => x.kms.create / x.identity.create).toFixed(2)}`,
);
console.log(
  `get:    kms ${med((x) => x.kms.get).toFixed(0)}/s, identity ${med((x) => x.identity.get).toFixed(0)}/s, ratio ${med((x) => x.kms.get / x.identity.get).toFixed(2)}`,
);

await kmsPlane.stop();
await identityPlane.stop();
pluginClient.close();
echoClient.close();
echo.forceShutdown();
plugin.kill("SIGTERM");
await keyhaven.stop();
