#!/usr/bin/env node
/** `keyhaven`: one program, one subcommand per role; each command's start-up is in src/cmd/. */
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "./config/config.js";
import { CredentialsFileError } from "./kms/identity/credentialsFile.js";
import { StartupError } from "./cmd/startupError.js";

async function main(): Promise<number> {
  const config = loadConfig(process.argv.slice(2));
  // Commands are loaded on demand: --help and mistyped flags answer without loading a
  // service, and each role's dependencies stay out of the others' start-up.
  switch (config.command) {
    case "help":
      process.stdout.write(config.text ?? "");
      return 0;
    case "version": {
      const pkg = JSON.parse(
        readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
      ) as { version: string };
      process.stdout.write(`keyhaven ${pkg.version}\n`);
      return 0;
    }
    case "agent":
      return (await import("./cmd/agent.js")).runAgent(config);
    case "controller":
      return (await import("./cmd/controller.js")).runController(config);
    case "kms-plugin":
      return (await import("./cmd/kmsPlugin.js")).runKmsPlugin(config);
    case "rewrap":
      return (await import("./cmd/rewrap.js")).runRewrap(config);
    case "migrate-store":
      return (await import("./cmd/migrateStore.js")).runMigrateStore(config);
    case "seal":
      return (await import("./cmd/seal.js")).runSeal(config);
    case "reseal":
      return (await import("./cmd/seal.js")).runReseal(config);
    case "serve":
      return (await import("./cmd/serveWorkers.js")).runServe(config);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const known =
      err instanceof ConfigError ||
      err instanceof CredentialsFileError ||
      err instanceof StartupError;
    const text = known
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
    process.stderr.write(`keyhaven: ${text}\n`);
    process.exitCode = known ? 2 : 1;
  },
);
