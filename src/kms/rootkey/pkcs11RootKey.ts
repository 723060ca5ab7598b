/**
 * `pkcs11` root key: an AES-256 key inside a PKCS#11 token (an HSM, or SoftHSM2), usually
 * reached through `p11-kit-client.so` and a `p11-kit server` sidecar (docs/hsm.md).
 *
 * The key is generated inside the token on first start (CKA_TOKEN, CKA_SENSITIVE, not
 * CKA_EXTRACTABLE) and found by its label after that. Every wrap and unwrap is an AES-GCM
 * operation under that key: native CKM_AES_GCM (C_Encrypt/C_Decrypt) when the token offers
 * it, else GCM composed around the token's CKM_AES_ECB (gcmOverBlockCipher.ts), which is
 * what crosses p11-kit 0.24's socket. Both give the same bytes.
 *
 * Wrapped blob, version 2:  0x02 ‖ IV (12) ‖ AES-256-GCM ciphertext ‖ tag (16),
 * with AAD = "keyhaven/wrap/v1|" ‖ context (as the local root key).
 *
 * Availability (the session pool, reconnects, deadlines) is the token's: src/kms/pkcs11/
 * pkcs11Token.ts. A token that cannot be reached is not a start-up error (the sidecar may
 * start later, or restart): the key is "down" with a reason (readiness() reports it),
 * requests that need it fail at once with RootKeyUnavailableError, and a timer reconnects.
 * A refused PIN, a key that could leave the token or a module that does not load are
 * configuration errors: fatal at start, and never retried later.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import pkcs11js from "pkcs11js";
import {
  Pkcs11ConfigError,
  Pkcs11Token,
  TokenUnavailableError,
  type Connection,
  type GcmMechanism,
  type Handle,
} from "../pkcs11/pkcs11Token.js";
import { gcmOpenWithToken, gcmSealWithToken, generateTokenAesKey } from "../pkcs11/tokenGcm.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES } from "../pkcs11/gcmOverBlockCipher.js";
import { RootKeyError, RootKeyUnavailableError, type RootKey } from "./rootKey.js";

const VERSION = 0x02;

export interface Pkcs11RootKeyOptions {
  /** The PKCS#11 module: p11-kit-client.so for the sidecar, or a vendor module loaded directly. */
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly keyLabel: string;
  /** The token's user PIN (from a file or KEYHAVEN_PKCS11_PIN; never a flag value). */
  readonly pin: string;
  /** Sessions kept open: how many HSM operations run at once (default 4). */
  readonly sessions?: number;
  /** An operation (including the wait for a free session) fails after this long (default 5 s). */
  readonly operationTimeoutMs?: number;
  /** How often to reconnect while down, and to check the connection while up (default 1 s / 5 s). */
  readonly reconnectIntervalMs?: number;
  readonly healthCheckIntervalMs?: number;
  readonly logger?: Logger;
}

export class Pkcs11RootKey implements RootKey {
  readonly id: string;
  readonly #token: Pkcs11Token<Handle>;

  private constructor(id: string, token: Pkcs11Token<Handle>) {
    this.id = id;
    this.#token = token;
  }

  /**
   * Connects (generating the key on first start). Throws RootKeyError for a configuration
   * error (module, PIN, key attributes); an unreachable token returns a key that is down
   * and reconnects in the background.
   */
  static open(options: Pkcs11RootKeyOptions): Pkcs11RootKey {
    const { keyLabel, tokenLabel, ...rest } = options;
    try {
      const token = Pkcs11Token.open({
        ...rest,
        tokenLabel,
        pinSource: "--pkcs11-pin-file or KEYHAVEN_PKCS11_PIN",
        purpose: "root key HSM",
        prepare: (lib, session) => findOrGenerateKey(lib, session, keyLabel, tokenLabel),
      });
      // Known without the token, so that a store can be matched to it while the HSM is down.
      return new Pkcs11RootKey(`pkcs11:${tokenLabel}/${keyLabel}`, token);
    } catch (err) {
      if (err instanceof Pkcs11ConfigError) throw new RootKeyError(err.message);
      throw err;
    }
  }

  /** Undefined when the key is usable; otherwise why not (for /readyz and logs). */
  readiness(): string | undefined {
    return this.#token.readiness();
  }

  /** Which mechanism does the work: native GCM, or GCM around the token's ECB. */
  get mechanism(): GcmMechanism | undefined {
    return this.#token.mechanism;
  }

  async wrap(plaintext: Buffer, context: string): Promise<Buffer> {
    const iv = randomBytes(GCM_IV_BYTES);
    const aad = Buffer.from(`keyhaven/wrap/v1|${context}`);
    const sealed = await this.#withSession((c, session) =>
      gcmSealWithToken(c, session, c.prepared, iv, plaintext, aad),
    );
    return Buffer.concat([Buffer.of(VERSION), iv, sealed]);
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    if (wrapped.length < 1 + GCM_IV_BYTES + GCM_TAG_BYTES || wrapped[0] !== VERSION)
      throw new RootKeyError("wrapped material has an unknown format");
    const iv = wrapped.subarray(1, 1 + GCM_IV_BYTES);
    const sealed = wrapped.subarray(1 + GCM_IV_BYTES);
    const aad = Buffer.from(`keyhaven/wrap/v1|${context}`);
    const opened = await this.#withSession((c, session) =>
      gcmOpenWithToken(c, session, c.prepared, iv, sealed, aad),
    );
    if (!opened)
      throw new RootKeyError("wrapped material does not authenticate under this root key");
    return opened;
  }

  close(): Promise<void> {
    return this.#token.close();
  }

  async #withSession<T>(fn: (c: Connection<Handle>, session: Handle) => Promise<T>): Promise<T> {
    try {
      return await this.#token.withSession(fn);
    } catch (err) {
      if (err instanceof TokenUnavailableError)
        throw new RootKeyUnavailableError(
          `the HSM holding the root key is unavailable (${this.#token.readiness() ?? "busy"}); the request can be retried`,
        );
      throw err;
    }
  }
}

/** The secret key labelled `label`, generated inside the token if there is none. */
function findOrGenerateKey(
  lib: pkcs11js.PKCS11,
  session: Handle,
  label: string,
  tokenLabel: string,
): Handle {
  lib.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  let found: Handle[];
  try {
    found = lib.C_FindObjects(session, 2);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
  if (found.length > 1)
    throw new Pkcs11ConfigError(
      `token '${tokenLabel}' holds several secret keys labelled '${label}'; keep only the one the store was wrapped with`,
    );
  if (found[0]) {
    assertRootKeyAttributes(lib, session, found[0], label);
    return found[0];
  }
  return generateTokenAesKey(lib, session, label);
}

/** Refuses a key under the label that could leave the token or is not AES-256. */
function assertRootKeyAttributes(
  lib: pkcs11js.PKCS11,
  session: Handle,
  key: Handle,
  label: string,
): void {
  const [keyType, length, sensitive, extractable] = lib
    .C_GetAttributeValue(session, key, [
      { type: pkcs11js.CKA_KEY_TYPE },
      { type: pkcs11js.CKA_VALUE_LEN },
      { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE },
    ])
    .map((a) => (a.value.length > 0 ? a.value.readUIntLE(0, Math.min(a.value.length, 6)) : 0));
  if (keyType !== pkcs11js.CKK_AES || length !== 32)
    throw new Pkcs11ConfigError(`the key labelled '${label}' is not an AES-256 key`);
  if (sensitive !== 1 || extractable !== 0)
    throw new Pkcs11ConfigError(
      `the key labelled '${label}' could leave the token (CKA_SENSITIVE false or CKA_EXTRACTABLE true); a root key must not: use a new label and run keyhaven rewrap`,
    );
}
