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
import process from "node:process";
import { runChild } from "./lib/child.mjs";
import { benchCredential, startBenchKeyService } from "./lib/keyService.mjs";

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
  let stop;
  ({ running, stop } = await startBenchKeyService({
    dataDir,
    credentials: [benchCredential(credential, account)],
    region,
    account,
  }));
  return { url: running.url, stop };
});
