/**
 * The subject of bench/sign.mjs: the real key service from dist/ (audit lines to a
 * file, as in bench/servers/keyService.mjs) in a forked child, which can also sign
 * in a tight loop with node:crypto using the very KeyObject the service signs with —
 * the raw baseline, measured in the same process on the same key.
 *
 * IPC (on top of bench/lib/child.mjs's cpu/stop): { cmd: "raw", keyId, algorithm,
 * message (base64), ms } → { raw: { signatures, seconds, cpuMicros } }.
 */
import { constants, sign } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runChild } from "./lib/child.mjs";

const { startKeyService } = await import("../dist/src/serve.js");

let running;
process.on("message", (message) => {
  if (message?.cmd !== "raw") return;
  void (async () => {
    const key = await running.service.store.getKey(message.keyId);
    const { privateKey } = await running.service.keyPair(key);
    const data = Buffer.from(message.message, "base64");
    const options =
      message.algorithm === "RSASSA_PSS_SHA_256"
        ? {
            key: privateKey,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
          }
        : privateKey;
    const cpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    const deadline = started + BigInt(message.ms) * 1_000_000n;
    let signatures = 0;
    let now = started;
    while (now < deadline) {
      for (let i = 0; i < 16; i++) sign("sha256", data, options);
      signatures += 16;
      now = process.hrtime.bigint();
    }
    const cpu = process.cpuUsage(cpuBefore);
    process.send({
      raw: { signatures, seconds: Number(now - started) / 1e9, cpuMicros: cpu.user + cpu.system },
    });
  })().catch((err) => process.send({ error: String(err?.stack ?? err) }));
});

runChild(async ({ dataDir, credential, region, account }) => {
  const credentialsFile = join(dataDir, "bench-credentials.yaml");
  writeFileSync(
    credentialsFile,
    [
      "credentials:",
      `  - accessKeyId: ${credential.accessKeyId}`,
      `    secretAccessKey: ${credential.secretAccessKey}`,
      `    principal: arn:aws:iam::${account}:user/bench`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const auditLog = join(dataDir, "audit.log");
  running = await startKeyService(
    {
      command: "serve",
      listen: { host: "127.0.0.1", port: 0 },
      dataDir,
      credentialsFile,
      account,
      region,
      logLevel: "warn",
      auditLog,
    },
    { announce: () => {} },
  );
  return {
    url: running.url,
    async stop() {
      await running.stop();
      const text = readFileSync(auditLog, "utf8");
      return { auditLines: text.length === 0 ? 0 : text.trimEnd().split("\n").length };
    },
  };
});
