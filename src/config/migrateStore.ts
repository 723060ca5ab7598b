/** `keyhaven migrate-store` (docs/high-availability.md): copies a store into another backend. */
import { z } from "zod";
import { optionalText } from "./schemas.js";
import { command, ConfigError, flag } from "./table.js";
import type { StoreSettings } from "./serve.js";

export type StoreLocation =
  { readonly type: "sqlite"; readonly path: string } | Exclude<StoreSettings, { type: "sqlite" }>;

export interface MigrateStoreConfig {
  readonly command: "migrate-store";
  readonly from: StoreLocation;
  readonly to: StoreLocation;
  readonly kubeconfig?: string;
}

const location = (help: string) =>
  flag({
    arg: "sqlite:PATH|kubernetes:NS",
    schema: z
      .string()
      .regex(
        /^(sqlite:.+|kubernetes:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/,
        "sqlite:PATH or kubernetes:NAMESPACE",
      ),
    help,
  });

function parse(flagName: string, value: string | undefined): StoreLocation {
  if (value === undefined)
    throw new ConfigError(`${flagName} is required (sqlite:PATH or kubernetes:NAMESPACE)`);
  const [type, ...rest] = value.split(":");
  const where = rest.join(":");
  return type === "sqlite"
    ? { type: "sqlite", path: where }
    : { type: "kubernetes", namespace: where };
}

export const MIGRATE_STORE_FLAGS = {
  from: location(
    "the store to copy: a SQLite file (DIR/keyhaven.db) or a kubernetes store's namespace",
  ),
  to: location(
    "the store to copy it into (created or completed; a SQLite file is created if absent)",
  ),
  kubeconfig: flag({
    arg: "FILE",
    env: ["KEYHAVEN_KUBECONFIG"],
    schema: optionalText,
    help: "kubeconfig for the kubernetes side (default: in-cluster, else KUBECONFIG)",
  }),
};

export const migrateStoreCommand = command({
  name: "migrate-store",
  summary:
    "Copy the store into another backend (sqlite <-> kubernetes), resumable (docs/high-availability.md).",
  synopsis: "--from sqlite:PATH|kubernetes:NS --to sqlite:PATH|kubernetes:NS [flags]",
  description:
    "Copies keys with every wrapped material version (as they are: the root key stays the same),\naliases, grants and the store's named values, with progress. Stop the key service first.\nIf it stops anywhere, run the same command again: it copies only what is missing.",
  flags: MIGRATE_STORE_FLAGS,
  build(c): MigrateStoreConfig {
    const from = parse("--from", c.from);
    const to = parse("--to", c.to);
    if (JSON.stringify(from) === JSON.stringify(to))
      throw new ConfigError("--from and --to are the same store");
    return {
      command: "migrate-store",
      from,
      to,
      ...(c.kubeconfig !== undefined && { kubeconfig: c.kubeconfig }),
    };
  },
});
