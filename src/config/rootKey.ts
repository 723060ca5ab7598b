/** The root-key flags `serve` and `rewrap` share (docs/hsm.md). */
import { nonEmpty, optionalText } from "./schemas.js";
import { ConfigError, flag, type Values } from "./table.js";

/** What wraps key material: DIR/root.key, or an AES key inside a PKCS#11 token. */
export type RootKeySettings =
  | { readonly type: "local" }
  | {
      readonly type: "pkcs11";
      readonly modulePath: string;
      readonly tokenLabel: string;
      readonly keyLabel: string;
      /** A file holding the PIN (e.g. a mounted Secret), or the PIN from KEYHAVEN_PKCS11_PIN. */
      readonly pinFile?: string;
      readonly pin?: string;
    };

export const PKCS11_FLAGS = {
  "pkcs11-module": flag({
    arg: "PATH",
    env: ["KEYHAVEN_PKCS11_MODULE"],
    schema: optionalText,
    help: "PKCS#11 module: p11-kit-client.so for the p11-kit server sidecar, or the HSM's own; also the module of AWS_CLOUDHSM custom key stores' tokens",
  }),
  "pkcs11-token-label": flag({
    arg: "LABEL",
    env: ["KEYHAVEN_PKCS11_TOKEN_LABEL"],
    schema: optionalText,
    help: "the token",
  }),
  "pkcs11-key-label": flag({
    arg: "LABEL",
    env: ["KEYHAVEN_PKCS11_KEY_LABEL"],
    default: "keyhaven-root",
    schema: nonEmpty,
    help: "the root key's label in the token (generated there on first start)",
  }),
  "pkcs11-pin-file": flag({
    arg: "FILE",
    env: ["KEYHAVEN_PKCS11_PIN_FILE"],
    schema: optionalText,
    help: "file with the token's user PIN; or the PIN itself in KEYHAVEN_PKCS11_PIN (never a flag)",
  }),
};

/** The settings for `type`; `flag` names the flag that chose pkcs11, for the error. */
export function rootKeySettings(
  type: "local" | "pkcs11",
  c: Values<typeof PKCS11_FLAGS>,
  env: NodeJS.ProcessEnv,
  flagName: string,
): RootKeySettings {
  if (type === "local") return { type: "local" };
  const modulePath = c["pkcs11-module"];
  const tokenLabel = c["pkcs11-token-label"];
  if (modulePath === undefined || tokenLabel === undefined)
    throw new ConfigError(
      `${flagName} pkcs11 needs --pkcs11-module PATH (e.g. p11-kit-client.so) and --pkcs11-token-label LABEL`,
    );
  const pin = env["KEYHAVEN_PKCS11_PIN"];
  return {
    type: "pkcs11",
    modulePath,
    tokenLabel,
    keyLabel: c["pkcs11-key-label"],
    ...(c["pkcs11-pin-file"] !== undefined && { pinFile: c["pkcs11-pin-file"] }),
    ...(pin && { pin }),
  };
}
