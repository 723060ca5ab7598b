/**
 * The root key a command is configured with (`--root-key local|pkcs11`), for `serve` and
 * both sides of `rewrap`. Configuration errors are RootKeyErrors that say what to fix.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { RootKeySettings } from "../../config/config.js";
import { LocalRootKey } from "./localRootKey.js";
import { Pkcs11RootKey } from "./pkcs11RootKey.js";
import { RootKeyError, type RootKey } from "./rootKey.js";

export interface OpenedRootKey {
  readonly rootKey: RootKey;
  /** A local key made just now (back it up with the store). */
  readonly created: boolean;
  /** Where it is, for messages: a file, or a token and label. */
  readonly where: string;
}

export function openRootKey(
  settings: RootKeySettings,
  dataDir: string,
  options: { readonly logger?: Logger; readonly create?: boolean } = {},
): OpenedRootKey {
  if (settings.type === "local") {
    const path = join(dataDir, "root.key");
    if (options.create === false && !existsSync(path))
      throw new RootKeyError(`there is no local root key ${path}`);
    const { rootKey, created } = LocalRootKey.openOrCreate(path);
    return { rootKey, created, where: path };
  }
  const rootKey = Pkcs11RootKey.open({
    modulePath: settings.modulePath,
    tokenLabel: settings.tokenLabel,
    keyLabel: settings.keyLabel,
    pin: settings.pin ?? readPin(settings.pinFile),
    ...(options.logger && { logger: options.logger }),
  });
  return {
    rootKey,
    created: false,
    where: `key '${settings.keyLabel}' in token '${settings.tokenLabel}'`,
  };
}

/** The PIN file's first line (a Secret's value may or may not end with a newline). */
function readPin(file: string | undefined): string {
  if (file === undefined)
    throw new RootKeyError(
      "--root-key pkcs11 needs the token's PIN: --pkcs11-pin-file FILE or KEYHAVEN_PKCS11_PIN",
    );
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new RootKeyError(`--pkcs11-pin-file ${file}: ${(err as Error).message}`);
  }
  const pin = text.split(/\r?\n/)[0] ?? "";
  if (pin === "") throw new RootKeyError(`--pkcs11-pin-file ${file} is empty`);
  return pin;
}
