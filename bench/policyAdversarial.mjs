/**
 * Issue 12, item 2: how long the key service takes to decide the requests that froze it
 * (backtracking regexes), against a plain Encrypt — same server, same run, one request at
 * a time, interleaved A B A B, per-request latencies measured here (sub-millisecond).
 *
 *   npm run build && node bench/policyAdversarial.mjs [--rounds 200]
 *
 * Subjects (each against a plain Encrypt under AWS's default key policy):
 *  - "arn pattern": Encrypt under a key whose policy has Resource "arn:*?*?*?*?*?*?*?X"
 *    (18 s per Encrypt with the old regexes);
 *  - "tenants pattern": an 8 KiB context value (the limit) shaped to backtrack against
 *    StringLike "tenants/*\/files/*";
 *  - "long ? segment": an 8 KiB value against a 4 KiB pattern segment with a "?" (the
 *    worst case of the new matcher);
 *  - "280 KB context": the value of the report (21.7 s before), now refused by the limit.
 * Prints median/p99 ms and the ratio of medians to the plain Encrypt. Numbers are
 * information, never a pass/fail gate; on a shared machine read the ratios.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { median, quantile } from "./lib/harness.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "200" } } });
const rounds = Number(args.rounds);

const region = "us-east-1";
const account = "000000000000";
const credentials = {
  bench: {
    accessKeyId: "AKIABENCHADVERSARY01",
    secretAccessKey: randomBytes(30).toString("base64"),
  },
  app: { accessKeyId: "AKIABENCHADVERSARY02", secretAccessKey: randomBytes(30).toString("base64") },
};
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-adversarial-"));
const server = await spawnServer(
  join(import.meta.dirname, "policyServer.mjs"),
  { dataDir, credentials, region, account },
  { name: "keyhaven" },
);
const target = { ...server, region, credential: credentials.bench };

async function call(operation, input) {
  const { status, json } = await callKms(target, operation, input);
  if (status !== 200) throw new Error(`${operation} failed: ${status} ${JSON.stringify(json)}`);
  return json;
}

const LONG_SEGMENT = `*${"a".repeat(4095)}?b*`;
const plainKey = (await call("CreateKey", {})).KeyMetadata.KeyId;
const trapKey = (
  await call("CreateKey", {
    Policy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${account}:root` },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${account}:user/bench` },
          Action: "kms:Encrypt",
          Resource: "arn:*?*?*?*?*?*?*?X",
        },
        {
          Effect: "Deny",
          Principal: "*",
          Action: "kms:Decrypt",
          Resource: "*",
          Condition: {
            StringNotLike: { "kms:EncryptionContext:path": ["tenants/*/files/*", LONG_SEGMENT] },
          },
        },
      ],
    }),
  })
).KeyMetadata.KeyId;
const plaintext = Buffer.from("x").toString("base64");
const encrypt = (KeyId, context) =>
  signKmsRequest(target, "Encrypt", {
    KeyId,
    Plaintext: plaintext,
    ...(context && { EncryptionContext: context }),
  });
// Decrypt reads the StringNotLike condition; the ciphertext carries the same context.
const decrypt = async (context) => {
  const { CiphertextBlob } = await call("Encrypt", {
    KeyId: trapKey,
    Plaintext: plaintext,
    EncryptionContext: context,
  });
  return signKmsRequest(target, "Decrypt", { CiphertextBlob, EncryptionContext: context });
};

const subjects = {
  "arn pattern": { request: await encrypt(trapKey, { path: "tenants/t1/files/f1" }), status: 200 },
  "tenants pattern": {
    request: await decrypt({ path: `tenants/${"a/files/".repeat(1_000)}\n` }),
    status: 200,
  },
  "long ? segment": { request: await decrypt({ path: "a".repeat(8_000) }), status: 400 },
  "280 KB context": {
    request: await encrypt(plainKey, { path: `tenants/${"a/files/".repeat(35_000)}\n` }),
    status: 400,
  },
};
const plain = await encrypt(plainKey, { path: "tenants/t1/files/f1" });

async function send(request) {
  const headers = { ...request.headers };
  delete headers.host;
  const started = process.hrtime.bigint();
  const response = await globalThis.fetch(new URL(request.path, server.url), {
    method: request.method,
    headers,
    body: request.body,
  });
  await response.arrayBuffer();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, status: response.status };
}

console.log(`${rounds} rounds, one request at a time (busy shared machine: read the ratios)`);
console.log(
  `${"subject".padEnd(18)} ${"median ms".padStart(10)} ${"p99 ms".padStart(8)} ${"plain median".padStart(13)} ${"ratio".padStart(6)}`,
);
try {
  for (const [name, subject] of Object.entries(subjects)) {
    const a = [];
    const b = [];
    for (let i = 0; i < rounds; i++) {
      a.push((await send(plain)).ms);
      const r = await send(subject.request);
      // "long ? segment" is refused by the Deny (AccessDeniedException, 400), as intended.
      if (r.status !== subject.status)
        throw new Error(`${name}: status ${r.status}, expected ${subject.status}`);
      b.push(r.ms);
    }
    const sorted = [...b].sort((x, y) => x - y);
    const ratio = median(b) / median(a);
    console.log(
      `${name.padEnd(18)} ${median(b).toFixed(2).padStart(10)} ${quantile(sorted, 0.99).toFixed(2).padStart(8)} ${median(a).toFixed(2).padStart(13)} ${ratio.toFixed(2).padStart(6)}`,
    );
  }
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
