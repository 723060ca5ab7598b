/**
 * Per-piece costs of the Encrypt hot path, in-process and without HTTP: where the
 * microseconds of one request go (signature check, decoding, sealing, encoding, the
 * audit line, the store read). Run after `npm run build`: `node bench/parts.mjs [DIST]`
 * (DIST: another build's dist/ folder with src/bench/, to compare). Figures are CPU time per call.
 * Complements `npm run bench` (end to end, against the echo baseline).
 */
import { randomBytes, randomUUID, createSecretKey } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import { signKmsRequest } from "./lib/sign.mjs";
const {
  verifySigV4,
  decodeInput,
  encodeOutput,
  sealCiphertext,
  pooledRandom,
  createLogger,
  bufferedDestination,
  lineFormatter,
  auditRecordText,
  SyncDestination,
  SqliteKeyStore,
} = await import(
  process.argv[2]
    ? pathToFileURL(join(resolve(process.argv[2]), "src/bench/keyService.js")).href
    : "../dist/src/bench/keyService.js"
);

/** CPU time per call (user + system), which neighbours on a shared machine disturb less than wall time. */
function bench(name, fn, n = 50000) {
  for (let i = 0; i < 2000; i++) fn();
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const used = process.cpuUsage(before);
  const us = (used.user + used.system) / n;
  console.log(`${name.padEnd(40)} ${us.toFixed(2)} µs`);
}
const credential = {
  accessKeyId: "AKIABENCHMARK0000001",
  secretAccessKey: "x".repeat(40),
  principal: "arn:aws:iam::000000000000:user/b",
};
const target = { url: "http://127.0.0.1:8080", region: "us-east-1", credential };
const keyId = randomUUID();
const input = { KeyId: keyId, Plaintext: randomBytes(1024).toString("base64") };
const signed = await signKmsRequest(target, "Encrypt", input);
const headers = Object.fromEntries(
  Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), [v]]),
);
const body = Buffer.from(signed.body);
const now = new Date();
bench("verifySigV4", () =>
  verifySigV4(
    { method: "POST", url: "/", headers, body },
    {
      service: "kms",
      region: "us-east-1",
      now,
      lookup: () => credential,
      requiredSignedHeaders: ["x-amz-target"],
    },
  ),
);
bench("JSON.parse body", () => JSON.parse(body.toString("utf8")));
const json = JSON.parse(body.toString("utf8"));
bench("decodeInput Encrypt", () => decodeInput("Encrypt", json));
const key = createSecretKey(randomBytes(32));
const random = pooledRandom();
const pt = randomBytes(1024);
bench("sealCiphertext 1KiB", () =>
  sealCiphertext(key, { keyId, materialVersion: 1 }, pt, undefined, random),
);
const blob = sealCiphertext(key, { keyId, materialVersion: 1 }, pt, undefined, random);
const out = {
  CiphertextBlob: blob,
  KeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyId}`,
  EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
};
bench("encodeOutput+stringify", () => JSON.stringify(encodeOutput("Encrypt", out)));
bench("randomUUID", () => randomUUID());
const dir = mkdtempSync(join(tmpdir(), "micro-"));
const audit = createLogger("info", pino.destination({ dest: join(dir, "a.log"), sync: false }));
const line = () => ({
  requestId: randomUUID(),
  operation: "Encrypt",
  principal: credential.principal,
  accessKeyId: credential.accessKeyId,
  sourceIp: "127.0.0.1",
  resources: [out.KeyId],
  outcome: "success",
  errorCode: undefined,
  errorMessage: undefined,
  durationMs: 0.123,
});
bench("audit.info (redact)", () => audit.info(line(), "kms request"), 20000);
const plain = pino(
  {
    level: "info",
    base: { service: "keyhaven" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (l) => ({ level: l }) },
  },
  pino.destination({ dest: join(dir, "b.log"), sync: false }),
);
bench("audit.info (no redact)", () => plain.info(line(), "kms request"), 20000);
// The audit sink `serve` uses: one write(2) per line before the answer (docs/security.md,
// "Audit"), against the 4 KiB-buffered asynchronous destination used before it.
const buffered = createLogger("info", bufferedDestination(join(dir, "c.log")));
bench("audit.info (buffered, async)", () => buffered.info(line(), "kms request"), 20000);
const strict = createLogger("info", new SyncDestination(join(dir, "d.log"), { strict: true }));
bench("audit.info (write(2) per line)", () => strict.info(line(), "kms request"), 20000);
// The audit line serve writes: the CloudTrail-shaped record, serialised as text and framed
// by lineFormatter (what the server does per request, then writes with its turn's others).
const identity = {
  type: "IAMUser",
  arn: credential.principal,
  accessKeyId: credential.accessKeyId,
};
const trail = () =>
  `${auditRecordText(
    {
      requestId: randomUUID(),
      eventTime: new Date(),
      eventSource: "kms.amazonaws.com",
      eventName: "Encrypt",
      userIdentity: identity,
      requestParameters: { KeyId: keyId, Plaintext: pt },
      resources: [out.KeyId],
    },
    {
      eventId: randomUUID(),
      region: "us-east-1",
      account: "000000000000",
      sourceIp: "::ffff:127.0.0.1",
      userAgent: "autocannon",
    },
  )},${JSON.stringify({ operation: "Encrypt", principal: credential.principal, durationMs: 0.123 }).slice(1, -1)},"outcome":"success"`;
const nullSink = createLogger("info", { write() {} });
const lines = lineFormatter(nullSink);
bench(
  "audit record + lineFormatter (null sink)",
  () => lines.write(lines.formatJson(trail(), "kms request")),
  20000,
);
const store = new SqliteKeyStore(join(dir, "k.db"));
await store.createKey(
  {
    keyId,
    arn: out.KeyId,
    createdAt: 1,
    description: "",
    keySpec: "SYMMETRIC_DEFAULT",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "AWS_KMS",
    state: "Enabled",
    policy:
      '{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}',
    tags: [],
    currentMaterialVersion: 1,
  },
  { keyId, version: 1, createdAt: 1, wrapped: randomBytes(60) },
);
bench("store.getKey (sync part; cached)", () => void store.getKey(keyId));
bench("all of the above, as one request", () => {
  verifySigV4(
    { method: "POST", url: "/", headers, body },
    {
      service: "kms",
      region: "us-east-1",
      now,
      lookup: () => credential,
      requiredSignedHeaders: ["x-amz-target"],
    },
  );
  const decoded = decodeInput("Encrypt", JSON.parse(body.toString("utf8")));
  void store.getKey(keyId);
  const sealed = sealCiphertext(
    key,
    { keyId, materialVersion: 1 },
    decoded.Plaintext,
    undefined,
    random,
  );
  JSON.stringify(encodeOutput("Encrypt", { ...out, CiphertextBlob: sealed }));
  audit.info(line(), "kms request");
});
