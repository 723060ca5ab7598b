/**
 * The subject: the real key service from dist/ (run `npm run build` first; or the
 * dist/ folder named by the `dist` option, to compare two builds), on a fresh data folder, with a known credential, and its audit log written to a file
 * (every request still produces its audit line; that cost is part of the figure).
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { runChild } from "../lib/child.mjs";

runChild(async ({ dataDir, credential, region, account, dist }) => {
  const serve = dist
    ? pathToFileURL(join(resolve(dist), "src/serve.js")).href
    : new URL("../../dist/src/serve.js", import.meta.url).href;
  const { startKeyService } = await import(serve);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
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
  const running = await startKeyService(
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
      // The audit destination writes asynchronously and stop() only starts its flush (the
      // rest is written at exit): count once the file has stopped growing.
      let size = -1;
      for (let stable = 0, waited = 0; stable < 3 && waited < 10_000; waited += 100) {
        await delay(100);
        const now = statSync(auditLog).size;
        stable = now === size ? stable + 1 : 0;
        size = now;
      }
      const text = readFileSync(auditLog, "utf8");
      return { auditLines: text.length === 0 ? 0 : text.trimEnd().split("\n").length };
    },
  };
});
