/**
 * Starts the real key service from a build (dist/ by default) for a benchmark child:
 * a fresh data folder, the given credentials file entries, and the audit log written to
 * a file (every request still produces its audit line; that cost is part of the figure).
 * Returns the running service and a `stop()` that reports how many audit lines were written.
 */
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";

/** kms:* on every resource; a credential without policies is allowed nothing. */
export const ADMINISTRATOR_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "kms:*", Resource: "*" }],
};

/** The bench's usual single administrator credential, as a credentials-file entry. */
export const benchCredential = (credential, account) => ({
  accessKeyId: credential.accessKeyId,
  secretAccessKey: credential.secretAccessKey,
  principal: `arn:aws:iam::${account}:user/bench`,
  policies: [ADMINISTRATOR_POLICY],
});

/**
 * `dist`: another build's dist/ folder, from a commit that has src/bench/. `args`: more
 * `serve` flags (e.g. --root-key pkcs11 ...); `env`: more of the environment the flags are
 * read with (e.g. KEYHAVEN_PKCS11_PIN).
 */
export async function startBenchKeyService({
  dataDir,
  credentials,
  region,
  account,
  dist,
  args = [],
  env = {},
}) {
  const entry = await import(
    dist
      ? pathToFileURL(join(resolve(dist), "src/bench/keyService.js")).href
      : "../../dist/src/bench/keyService.js"
  );
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(dataDir, "bench-credentials.yaml");
  writeFileSync(credentialsFile, stringify({ credentials }), { mode: 0o600 });
  const auditLog = join(dataDir, "audit.log");
  const flags = {
    listen: "127.0.0.1:0",
    data: dataDir,
    credentials: credentialsFile,
    account,
    region,
  };
  const running = await entry.startKeyService(
    // The flags as `keyhaven serve` parses them; a build from before src/bench exported
    // loadConfig (a --compare baseline) gets the config object those builds took.
    entry.loadConfig
      ? entry.loadConfig(
          [
            "serve",
            ...Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value]),
            ...args,
          ],
          { KEYHAVEN_LOG_LEVEL: "warn", KEYHAVEN_AUDIT_LOG: auditLog, ...env },
        )
      : {
          command: "serve",
          listen: { host: "127.0.0.1", port: 0 },
          dataDir,
          credentialsFile,
          account,
          region,
          logLevel: "warn",
          auditLog,
          rootKey: { type: "local" },
        },
    { announce: () => {} },
  );
  return {
    running,
    async stop() {
      await running.stop();
      // The audit destination writes asynchronously and stop() only starts its flush (the
      // rest is written at exit): count once the file has stopped growing.
      let size = -1;
      for (let stable = 0, waited = 0; stable < 3 && waited < 10_000; waited += 100) {
        await delay(100);
        const now = statSync(auditLog).size;
        stable = now === size ? stable + 1 : 0;
        size = now;
      }
      return { auditLines: countLines(auditLog) };
    },
  };
}

/** The lines of a file, read in blocks: a long run's audit log outgrows a JavaScript string. */
function countLines(path) {
  const fd = openSync(path, "r");
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    let lines = 0;
    for (let n; (n = readSync(fd, block, 0, block.length, null)) > 0;)
      for (let at = block.indexOf(10); at >= 0 && at < n; at = block.indexOf(10, at + 1)) lines++;
    return lines;
  } finally {
    closeSync(fd);
  }
}

/** Region, account and a fresh credential for one bench run (the servers and the signer share them). */
export function benchIdentity(accessKeyId = "AKIABENCHMARK0000001") {
  return {
    region: "us-east-1",
    account: "000000000000",
    credential: { accessKeyId, secretAccessKey: randomBytes(30).toString("base64") },
  };
}
