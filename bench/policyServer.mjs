/**
 * The key service for bench/policy.mjs: from dist/, two credentials — `bench` (no
 * `policies`: an administrator through the default key policy's delegation) and
 * `app` (no caller policies: only grants let it in) — and the audit log in a file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { runChild } from "./lib/child.mjs";

const { startKeyService } = await import("../dist/src/serve.js");

runChild(async ({ dataDir, credentials, region, account }) => {
  const credentialsFile = join(dataDir, "bench-credentials.yaml");
  writeFileSync(
    credentialsFile,
    stringify({
      credentials: [
        {
          ...credentials.bench,
          principal: `arn:aws:iam::${account}:user/bench`,
          tags: { team: "payments", tenant: "t1" },
        },
        { ...credentials.app, principal: `arn:aws:iam::${account}:user/app`, policies: [] },
      ],
    }),
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
      const text = readFileSync(auditLog, "utf8");
      return { auditLines: text.length === 0 ? 0 : text.trimEnd().split("\n").length };
    },
  };
});
