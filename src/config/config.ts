/**
 * Command line and environment → one validated, frozen configuration. This is the
 * only module that reads process.env; flags win over environment variables. Each
 * command's flags are one table (serve.ts, controller.ts + webhook.ts, agent.ts,
 * kmsPlugin.ts); table.ts turns a table into its parser and usage text. A new flag is
 * one table entry (and its field in build); a new command is a file with its table and
 * `command(...)`, added to COMMANDS and to Config.
 */
import { agentCommand, type AgentConfig } from "./agent.js";
import { controllerCommand, type ControllerConfig } from "./controller.js";
import { kmsPluginCommand, type KmsPluginConfig } from "./kmsPlugin.js";
import { rewrapCommand, type RewrapConfig } from "./rewrap.js";
import { migrateStoreCommand, type MigrateStoreConfig } from "./migrateStore.js";
import { resealCommand, sealCommand, type ResealConfig, type SealConfig } from "./seal.js";
import { serveCommand, type ServeConfig } from "./serve.js";
import { closest, columns, ConfigError, type Command } from "./table.js";

export type { AgentConfig } from "./agent.js";
export type { ControllerConfig } from "./controller.js";
export type { KmsPluginConfig } from "./kmsPlugin.js";
export type { RewrapConfig } from "./rewrap.js";
export type { MigrateStoreConfig } from "./migrateStore.js";
export type { RootKeySettings } from "./rootKey.js";
export type { ResealConfig, SealConfig } from "./seal.js";
export type { ServeConfig } from "./serve.js";
export type { InjectionSettings, WebhookConfig } from "./webhook.js";
export { closest, ConfigError } from "./table.js";

export type Config =
  | ServeConfig
  | AgentConfig
  | ControllerConfig
  | KmsPluginConfig
  | RewrapConfig
  | MigrateStoreConfig
  | SealConfig
  | ResealConfig
  | { readonly command: "help" | "version"; readonly text?: string };

const COMMANDS: ReadonlyMap<string, Command<Config>> = new Map(
  [
    serveCommand,
    agentCommand,
    controllerCommand,
    kmsPluginCommand,
    rewrapCommand,
    migrateStoreCommand,
    sealCommand,
    resealCommand,
  ].map((c) => [c.name, c]),
);

export const USAGE = `Usage: keyhaven <command> [flags]

Commands:
${[
  ...COMMANDS.values(),
  { name: "help", summary: "Show this text." },
  { name: "version", summary: "Print the version." },
]
  .map(({ name, summary }) => columns(`  ${name}`, 14, [summary]))
  .join("")}
keyhaven <command> --help prints that command's flags.
`;

/** Each command's --help text (`keyhaven help <command>` prints it too). */
const COMMAND_USAGE: ReadonlyMap<string, string> = new Map([
  ...[...COMMANDS.values()].map((c) => [c.name, c.usage] as const),
  ["help", USAGE],
  ["version", "Usage: keyhaven version\n\nPrints the version.\n"],
]);

export const KMS_PLUGIN_USAGE = kmsPluginCommand.usage;

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h")
    return { command: "help", text: (rest[0] && COMMAND_USAGE.get(rest[0])) ?? USAGE };
  if (name === "version" || name === "--version") return { command: "version" };
  const command = COMMANDS.get(name);
  if (command === undefined) {
    const guess = closest(name, [...COMMAND_USAGE.keys()]);
    throw new ConfigError(
      `unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ""}\n\n${USAGE}`,
    );
  }
  if (rest.includes("--help") || rest.includes("-h"))
    return { command: "help", text: command.usage };
  return command.load(rest, env);
}
