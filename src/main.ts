#!/usr/bin/env node
/** `keyhaven`: one program, one subcommand per role. */
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "./config/config.js";
import { CredentialsFileError } from "./kms/identity/credentialsFile.js";

async function main(): Promise<number> {
  const config = loadConfig(process.argv.slice(2));
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
    case "agent": {
      const stop = new AbortController();
      process.once("SIGTERM", () => stop.abort());
      process.once("SIGINT", () => stop.abort());
      // Loaded on demand: the agent's dependencies stay out of the other roles' start-up.
      const { runAgentCommand } = await import("./agent/command.js");
      return runAgentCommand(config, { signal: stop.signal });
    }
    case "controller": {
      const { startController } = await import("./controller/run.js");
      const running = await startController(config);
      const signalled = new Promise<"stopped">((resolve) => {
        process.once("SIGTERM", () => resolve("stopped"));
        process.once("SIGINT", () => resolve("stopped"));
      });
      const outcome = await Promise.race([running.done, signalled]);
      await running.stop();
      // A lost Lease: exit non-zero so the replica restarts as a follower.
      return outcome === "lost" ? 1 : 0;
    }
    case "kms-plugin": {
      const { createLogger } = await import("./observability/logger.js");
      const { startKmsPlugin } = await import("./kmsplugin/server.js");
      const running = await startKmsPlugin(config, {
        logger: createLogger(config.logLevel),
      });
      await new Promise<void>((resolve) => {
        process.once("SIGTERM", () => resolve());
        process.once("SIGINT", () => resolve());
      });
      await running.stop();
      return 0;
    }
    case "serve": {
      // Loaded on demand too: --help and mistyped flags answer without loading the service.
      const { startKeyService } = await import("./serve.js");
      const running = await startKeyService(config);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      await running.stop();
      return 0;
    }
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
      // serve.js is loaded on demand, so its StartupError is known by name.
      (err instanceof Error && err.name === "StartupError");
    const text = known
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
    process.stderr.write(`keyhaven: ${text}\n`);
    process.exitCode = known ? 2 : 1;
  },
);
