/** `keyhaven rewrap` (docs/hsm.md): moves the store in the data folder to another root key. */
import { z } from "zod";
import { PKCS11_FLAGS, rootKeySettings, type RootKeySettings } from "./rootKey.js";
import { nonEmpty } from "./schemas.js";
import { command, ConfigError, flag } from "./table.js";

export interface RewrapConfig {
  readonly command: "rewrap";
  readonly dataDir: string;
  readonly from: RootKeySettings;
  readonly to: RootKeySettings;
}

const side = (help: string) =>
  flag({
    arg: "local|pkcs11",
    schema: z.enum(["local", "pkcs11"], { error: "local or pkcs11" }),
    help,
  });

export const REWRAP_FLAGS = {
  from: side("the root key the store is under now"),
  to: side("the root key to move it to (local: DIR/root.key, created if absent)"),
  data: flag({
    arg: "DIR",
    env: ["KEYHAVEN_DATA"],
    default: "./.keyhaven",
    schema: nonEmpty,
    help: "data folder of the store",
  }),
  ...PKCS11_FLAGS,
};

export const rewrapCommand = command({
  name: "rewrap",
  summary: "Move the store to another root key (local <-> pkcs11), resumable (docs/hsm.md).",
  synopsis: "--from local|pkcs11 --to local|pkcs11 [flags]",
  description:
    "Unwraps every key-material version in the store under the --from root key and wraps it\nunder the --to root key, one version per transaction, with progress. Stop the key service\nfirst. If it stops anywhere, nothing is lost: run the same command again to finish.",
  flags: REWRAP_FLAGS,
  build(c, env): RewrapConfig {
    if (c.from === c.to)
      throw new ConfigError(`--from and --to are both ${c.from}: nothing to move`);
    return {
      command: "rewrap",
      dataDir: c.data,
      from: rootKeySettings(c.from, c, env, "--from"),
      to: rootKeySettings(c.to, c, env, "--to"),
    };
  },
});
