/** `keyhaven kms-plugin`: the KMS v2 plugin on its socket until SIGTERM or SIGINT. */
import type { KmsPluginConfig } from "../config/config.js";
import { startKmsPlugin } from "../kmsplugin/server.js";
import { createLogger } from "../observability/logger.js";
import { untilStopped } from "./signals.js";

export async function runKmsPlugin(config: KmsPluginConfig): Promise<number> {
  const running = await startKmsPlugin(config, { logger: createLogger(config.logLevel) });
  await untilStopped();
  await running.stop();
  return 0;
}
