/**
 * Command line and environment → one validated, frozen configuration. This is the
 * only module that reads process.env; flags win over KEYHAVEN_* variables.
 */
import { parseArgs } from "node:util";
import { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const hostPort = z.string().transform((value, ctx) => {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({
      code: "custom",
      message: `expected HOST:PORT, e.g. 127.0.0.1:8080, got '${value}'`,
    });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port };
});

const serveSchema = z
  .object({
    listen: hostPort,
    data: z.string().min(1),
    credentials: z.string().min(1).optional(),
    account: z.string().regex(/^\d{12}$/, "an account id is 12 digits"),
    region: z.string().regex(/^([a-z]+-){2,3}\d+$/, "a region looks like us-east-1"),
    "tls-cert": z.string().min(1).optional(),
    "tls-key": z.string().min(1).optional(),
    "log-level": z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    "audit-log": z.string().min(1).optional(),
  })
  .refine((c) => (c["tls-cert"] === undefined) === (c["tls-key"] === undefined), {
    message: "--tls-cert and --tls-key go together",
  });

export interface ServeConfig {
  readonly command: "serve";
  readonly listen: { readonly host: string; readonly port: number };
  readonly dataDir: string;
  readonly credentialsFile?: string;
  readonly account: string;
  readonly region: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly logLevel: string;
  /** File for audit lines; stdout (with the logs) when absent. */
  readonly auditLog?: string;
}

export type Config = ServeConfig | { readonly command: "help" | "version"; readonly text?: string };

export const USAGE = `Usage: keyhaven <command> [flags]

Commands:
  serve     Run the key service (AWS KMS wire protocol) on an embedded store.
  help      Show this text.
  version   Print the version.

keyhaven serve flags (environment variable in brackets):
  --listen HOST:PORT     address to listen on [KEYHAVEN_LISTEN] (default 127.0.0.1:8080)
  --data DIR             data folder: store, root key, generated credentials [KEYHAVEN_DATA] (default ./.keyhaven)
  --credentials FILE     credentials file (YAML) [KEYHAVEN_CREDENTIALS]; without it, DIR/credentials.yaml,
                         created with one admin credential on first start
  --account ID           12-digit account id in ARNs [KEYHAVEN_ACCOUNT] (default 000000000000)
  --region NAME          region served; requests must be signed for it [KEYHAVEN_REGION] (default us-east-1)
  --tls-cert FILE        serve HTTPS with this certificate chain (PEM) [KEYHAVEN_TLS_CERT]
  --tls-key FILE         ... and this private key (PEM) [KEYHAVEN_TLS_KEY]
  --audit-log FILE       append audit lines to FILE instead of stdout [KEYHAVEN_AUDIT_LOG]
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent [KEYHAVEN_LOG_LEVEL] (default info)
`;

const ENV: Record<string, string> = {
  listen: "KEYHAVEN_LISTEN",
  data: "KEYHAVEN_DATA",
  credentials: "KEYHAVEN_CREDENTIALS",
  account: "KEYHAVEN_ACCOUNT",
  region: "KEYHAVEN_REGION",
  "tls-cert": "KEYHAVEN_TLS_CERT",
  "tls-key": "KEYHAVEN_TLS_KEY",
  "log-level": "KEYHAVEN_LOG_LEVEL",
  "audit-log": "KEYHAVEN_AUDIT_LOG",
};

const DEFAULTS: Record<string, string> = {
  listen: "127.0.0.1:8080",
  data: "./.keyhaven",
  account: "000000000000",
  region: "us-east-1",
  "log-level": "info",
};

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h")
    return { command: "help", text: USAGE };
  if (command === "version" || command === "--version") return { command: "version" };
  if (command !== "serve") throw new ConfigError(`unknown command '${command}'\n\n${USAGE}`);

  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      options: Object.fromEntries(Object.keys(ENV).map((k) => [k, { type: "string" as const }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${USAGE}`);
  }
  const merged: Record<string, string | undefined> = {};
  for (const [flag, variable] of Object.entries(ENV)) {
    const v = values[flag];
    merged[flag] = typeof v === "string" ? v : (env[variable] ?? DEFAULTS[flag]);
  }
  const parsed = serveSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path[0];
    throw new ConfigError(`${flag === undefined ? "" : `--${String(flag)}: `}${issue.message}`);
  }
  const c = parsed.data;
  const config: ServeConfig = {
    command: "serve",
    listen: c.listen,
    dataDir: c.data,
    account: c.account,
    region: c.region,
    logLevel: c["log-level"],
    ...(c.credentials !== undefined && { credentialsFile: c.credentials }),
    ...(c["tls-cert"] !== undefined &&
      c["tls-key"] !== undefined && { tls: { certFile: c["tls-cert"], keyFile: c["tls-key"] } }),
    ...(c["audit-log"] !== undefined && { auditLog: c["audit-log"] }),
  };
  return Object.freeze(config);
}
