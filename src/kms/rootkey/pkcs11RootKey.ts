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
 * Availability: a token that cannot be reached is not a start-up error (the sidecar may
 * start later, or restart): the key is "down" with a reason (readiness() reports it),
 * requests that need it fail at once with RootKeyUnavailableError, and a timer reconnects
 * (new C_Initialize, sessions, login, key lookup). A refused PIN, a key that could leave
 * the token or a module that does not load are configuration errors: fatal at start, and
 * never retried later (retrying a wrong PIN would lock the token).
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import pkcs11js from "pkcs11js";
import { gcmOpen, gcmSeal, GCM_IV_BYTES, GCM_TAG_BYTES } from "./gcmOverBlockCipher.js";
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

type Handle = pkcs11js.Handle;

/** A configuration problem: fatal at start, never retried. */
class Pkcs11ConfigError extends RootKeyError {}

const PIN_ERRORS = new Set([
  pkcs11js.CKR_PIN_INCORRECT,
  pkcs11js.CKR_PIN_INVALID,
  pkcs11js.CKR_PIN_LEN_RANGE,
  pkcs11js.CKR_PIN_EXPIRED,
  pkcs11js.CKR_PIN_LOCKED,
]);
/** What C_Decrypt says about a blob that does not authenticate under native CKM_AES_GCM. */
const NOT_AUTHENTIC = new Set([
  pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
]);

/** Whether the token still answers on this session (a cheap call that changes nothing). */
function answers(c: Connection, session: Handle): boolean {
  try {
    c.lib.C_GetSessionInfo(session);
    return true;
  } catch {
    return false;
  }
}

interface Connection {
  readonly lib: pkcs11js.PKCS11;
  readonly key: Handle;
  readonly mechanism: "CKM_AES_GCM" | "CKM_AES_ECB";
  readonly sessions: Handle[];
  readonly idle: Handle[];
  readonly waiters: Array<(session: Handle | undefined) => void>;
  inFlight: number;
  lost: boolean;
  finalized: boolean;
}

function isPkcs11Error(err: unknown): err is Error & { code: number } {
  return err instanceof pkcs11js.Pkcs11Error;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Pkcs11RootKey implements RootKey {
  readonly id: string;
  readonly #options: Required<Omit<Pkcs11RootKeyOptions, "logger">> & { logger?: Logger };
  #connection: Connection | undefined;
  /** A lost connection whose calls have not all returned: no C_Initialize before it is finalized. */
  #draining: Connection | undefined;
  /** Why the key cannot be used now; undefined while connected. */
  #down: string | undefined = "not connected yet";
  #fatal = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: Pkcs11RootKeyOptions) {
    this.#options = {
      sessions: 4,
      operationTimeoutMs: 5000,
      reconnectIntervalMs: 1000,
      healthCheckIntervalMs: 5000,
      ...options,
    };
    // Known without the token, so that a store can be matched to it while the HSM is down.
    this.id = `pkcs11:${options.tokenLabel}/${options.keyLabel}`;
  }

  /**
   * Connects (generating the key on first start). Throws RootKeyError for a configuration
   * error (module, PIN, key attributes); an unreachable token returns a key that is down
   * and reconnects in the background.
   */
  static open(options: Pkcs11RootKeyOptions): Pkcs11RootKey {
    const rootKey = new Pkcs11RootKey(options);
    rootKey.#tryConnect();
    if (rootKey.#fatal) throw new RootKeyError(rootKey.#down);
    return rootKey;
  }

  /** Undefined when the key is usable; otherwise why not (for /readyz and logs). */
  readiness(): string | undefined {
    return this.#down;
  }

  /** Which mechanism does the work: native GCM, or GCM around the token's ECB. */
  get mechanism(): Connection["mechanism"] | undefined {
    return this.#connection?.mechanism;
  }

  async wrap(plaintext: Buffer, context: string): Promise<Buffer> {
    const iv = randomBytes(GCM_IV_BYTES);
    const aad = Buffer.from(`keyhaven/wrap/v1|${context}`);
    const sealed = await this.#withSession(async (c, session) => {
      if (c.mechanism === "CKM_AES_ECB")
        return gcmSeal((blocks) => this.#ecb(c, session, blocks), iv, plaintext, aad);
      c.lib.C_EncryptInit(session, gcmMechanism(iv, aad), c.key);
      return c.lib.C_EncryptAsync(
        session,
        plaintext,
        Buffer.alloc(plaintext.length + GCM_TAG_BYTES),
      );
    });
    return Buffer.concat([Buffer.of(VERSION), iv, sealed]);
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    if (wrapped.length < 1 + GCM_IV_BYTES + GCM_TAG_BYTES || wrapped[0] !== VERSION)
      throw new RootKeyError("wrapped material has an unknown format");
    const iv = wrapped.subarray(1, 1 + GCM_IV_BYTES);
    const sealed = wrapped.subarray(1 + GCM_IV_BYTES);
    const aad = Buffer.from(`keyhaven/wrap/v1|${context}`);
    const opened = await this.#withSession(async (c, session) => {
      if (c.mechanism === "CKM_AES_ECB")
        return gcmOpen((blocks) => this.#ecb(c, session, blocks), iv, sealed, aad);
      c.lib.C_DecryptInit(session, gcmMechanism(iv, aad), c.key);
      try {
        return await c.lib.C_DecryptAsync(session, sealed, Buffer.alloc(sealed.length));
      } catch (err) {
        if (isPkcs11Error(err) && NOT_AUTHENTIC.has(err.code)) return undefined;
        // Through p11-kit 0.25's socket a failed tag comes back as CKR_GENERAL_ERROR, which
        // also means a broken token. A session that still answers tells the two apart.
        if (isPkcs11Error(err) && err.code === pkcs11js.CKR_GENERAL_ERROR && answers(c, session))
          return undefined;
        throw err;
      }
    });
    if (!opened)
      throw new RootKeyError("wrapped material does not authenticate under this root key");
    return opened;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#connection) this.#lose(this.#connection, "closed");
  }

  #ecb(c: Connection, session: Handle, blocks: Buffer): Promise<Buffer> {
    c.lib.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_ECB }, c.key);
    return c.lib.C_EncryptAsync(session, blocks, Buffer.alloc(blocks.length));
  }

  /**
   * Runs `fn` on a pooled session with a deadline. A PKCS#11 error there (other than a
   * blob that does not authenticate) means the token or the socket is gone: the
   * connection is dropped and rebuilt by the timer.
   */
  async #withSession<T>(fn: (c: Connection, session: Handle) => Promise<T>): Promise<T> {
    const c = this.#connection;
    if (!c) throw this.#unavailable();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#lose(c, `an HSM operation took longer than ${this.#options.operationTimeoutMs} ms`);
        reject(this.#unavailable());
      }, this.#options.operationTimeoutMs);
    });
    c.inFlight++;
    let session: Handle | undefined;
    try {
      session = await Promise.race([this.#acquire(c), deadline]);
      return await Promise.race([fn(c, session), deadline]);
    } catch (err) {
      if (err instanceof RootKeyError || err instanceof RootKeyUnavailableError) throw err;
      if (!isPkcs11Error(err)) throw err;
      this.#lose(c, `the token answered ${err.message}`);
      throw this.#unavailable();
    } finally {
      clearTimeout(timer);
      c.inFlight--;
      if (session) this.#release(c, session);
      if (c.lost && c.inFlight === 0) finalize(c);
    }
  }

  #acquire(c: Connection): Promise<Handle> {
    const idle = c.idle.pop();
    if (idle) return Promise.resolve(idle);
    return new Promise((resolve, reject) =>
      c.waiters.push((s) => (s ? resolve(s) : reject(this.#unavailable()))),
    );
  }

  #release(c: Connection, session: Handle): void {
    if (c.lost) return;
    const waiter = c.waiters.shift();
    if (waiter) waiter(session);
    else c.idle.push(session);
  }

  #unavailable(): RootKeyUnavailableError {
    return new RootKeyUnavailableError(
      `the HSM holding the root key is unavailable (${this.#down ?? "busy"}); the request can be retried`,
    );
  }

  /** Marks the connection gone (once), fails its waiters and finalizes it when idle. */
  #lose(c: Connection, reason: string): void {
    if (c.lost) return;
    c.lost = true;
    if (this.#connection === c) this.#connection = undefined;
    this.#draining = c;
    this.#down = reason;
    for (const w of c.waiters.splice(0)) w(undefined);
    if (!this.#closed) this.#options.logger?.warn({ reason }, "root key HSM unavailable");
    if (c.inFlight === 0) finalize(c);
    this.#schedule();
  }

  /** One timer: reconnects while down, checks the connection while up. */
  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#closed || this.#fatal) return;
    const up = this.#connection !== undefined;
    this.#timer = setTimeout(
      () => (this.#connection ? this.#check(this.#connection) : this.#tryConnect()),
      up ? this.#options.healthCheckIntervalMs : this.#options.reconnectIntervalMs,
    );
    this.#timer.unref();
  }

  /** An idle session's C_GetSessionInfo: notices a token that went away while no request came. */
  #check(c: Connection): void {
    const session = c.idle[0];
    try {
      if (session) c.lib.C_GetSessionInfo(session);
    } catch (err) {
      this.#lose(c, `the token answered ${describe(err)}`);
      return;
    }
    this.#schedule();
  }

  #tryConnect(): void {
    if (this.#draining && !this.#draining.finalized) return this.#schedule();
    try {
      const c = this.#connect();
      this.#connection = c;
      this.#down = undefined;
      this.#options.logger?.info(
        { rootKeyId: this.id, mechanism: c.mechanism, sessions: c.sessions.length },
        "root key HSM connected",
      );
    } catch (err) {
      this.#fatal = err instanceof Pkcs11ConfigError;
      const reason = describe(err);
      if (reason !== this.#down)
        this.#options.logger?.[this.#fatal ? "error" : "warn"](
          { reason },
          "root key HSM unavailable",
        );
      this.#down = reason;
    }
    this.#schedule();
  }

  #connect(): Connection {
    const o = this.#options;
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(o.modulePath);
    } catch (err) {
      throw new Pkcs11ConfigError(
        `cannot load the PKCS#11 module ${o.modulePath}: ${describe(err)}`,
      );
    }
    const sessions: Handle[] = [];
    try {
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      const slot = lib
        .C_GetSlotList(true)
        .find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === o.tokenLabel);
      if (!slot)
        throw new Error(
          `no token labelled '${o.tokenLabel}' in ${o.modulePath} (for p11-kit-client.so: is the p11-kit server sidecar running, and P11_KIT_SERVER_ADDRESS its socket?)`,
        );
      const first = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      sessions.push(first);
      login(lib, first, o.pin, o.tokenLabel);
      const key = findOrGenerateKey(lib, first, o.keyLabel, o.tokenLabel);
      const mechanisms = lib.C_GetMechanismList(slot);
      const mechanism = mechanisms.includes(pkcs11js.CKM_AES_GCM)
        ? "CKM_AES_GCM"
        : mechanisms.includes(pkcs11js.CKM_AES_ECB)
          ? "CKM_AES_ECB"
          : undefined;
      if (!mechanism)
        throw new Pkcs11ConfigError(
          `token '${o.tokenLabel}' offers neither CKM_AES_GCM nor CKM_AES_ECB; the root key needs one of them`,
        );
      // Login state is per token and application: the other sessions share it.
      while (sessions.length < o.sessions)
        sessions.push(lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION));
      return {
        lib,
        key,
        mechanism,
        sessions,
        idle: [...sessions],
        waiters: [],
        inFlight: 0,
        lost: false,
        finalized: false,
      };
    } catch (err) {
      finalize({ lib, sessions, finalized: false });
      throw err;
    }
  }
}

function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 },
  } as pkcs11js.Mechanism;
}

function login(lib: pkcs11js.PKCS11, session: Handle, pin: string, tokenLabel: string): void {
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    if (isPkcs11Error(err) && err.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    if (isPkcs11Error(err) && PIN_ERRORS.has(err.code))
      throw new Pkcs11ConfigError(
        `token '${tokenLabel}' refused the PIN (${err.message}); check --pkcs11-pin-file or KEYHAVEN_PKCS11_PIN (not retried: repeated wrong PINs lock a token)`,
      );
    throw err;
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
  return lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
  ]);
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

/** Closes what a connection opened; errors are expected (the token may be gone). */
function finalize(c: { lib: pkcs11js.PKCS11; sessions: Handle[]; finalized: boolean }): void {
  // Once only: the library's state is shared with the next connection's C_Initialize.
  if (c.finalized) return;
  c.finalized = true;
  for (const s of c.sessions.splice(0)) {
    try {
      c.lib.C_CloseSession(s);
    } catch {
      // The session went with the token.
    }
  }
  try {
    c.lib.C_Finalize();
  } catch {
    // Not initialized, or the socket is gone: nothing left to release.
  }
  try {
    c.lib.close();
  } catch {
    // Already unloaded.
  }
}
