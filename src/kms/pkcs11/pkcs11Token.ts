/**
 * A logged-in PKCS#11 token with a pool of sessions that survives the token going away:
 * what the pkcs11 root key and each AWS_CLOUDHSM custom key store stand on (docs/hsm.md).
 *
 * Opening connects at once (module, slot by label, sessions, C_Login, then `prepare`, e.g.
 * finding or generating a key). A token that cannot be reached is not an error: the token
 * is "down" with a reason, operations fail at once with TokenUnavailableError, and a timer
 * reconnects. A refused PIN or a module that does not load is a Pkcs11ConfigError: fatal,
 * never retried (retrying a wrong PIN would lock the token).
 *
 * Every operation runs on a pooled session with a deadline; a PKCS#11 error that escapes it
 * means the token or the socket is gone, so the connection is dropped and rebuilt.
 */
import type { Logger } from "pino";
import pkcs11js from "pkcs11js";
import { acquireModule, ModuleLoadError, type ModuleLease } from "./pkcs11Module.js";

export type Handle = pkcs11js.Handle;

/** How AES-GCM is computed: by the token, or around the token's AES-ECB (gcmOverBlockCipher.ts). */
export type GcmMechanism = "CKM_AES_GCM" | "CKM_AES_ECB";

/** Why a connection failed, in AWS's ConnectionErrorCode words (custom key stores report it). */
export type TokenErrorCode =
  | "INVALID_CREDENTIALS"
  | "USER_LOCKED_OUT"
  | "CLUSTER_NOT_FOUND"
  | "NETWORK_ERRORS"
  | "INTERNAL_ERROR";

/** A configuration problem: fatal, never retried. */
export class Pkcs11ConfigError extends Error {
  override name = "Pkcs11ConfigError";
  constructor(
    message: string,
    readonly code: TokenErrorCode = "INTERNAL_ERROR",
  ) {
    super(message);
  }
}

/** The token cannot be used now; a later operation may succeed. */
export class TokenUnavailableError extends Error {
  override name = "TokenUnavailableError";
}

export interface Pkcs11TokenOptions<P> {
  /** The PKCS#11 module: p11-kit-client.so for the sidecar, or a vendor module loaded directly. */
  readonly modulePath: string;
  readonly tokenLabel: string;
  /** The token's user PIN; never logged, never in an error. */
  readonly pin: string;
  /** Where the PIN comes from, for the wrong-PIN message (e.g. "--pkcs11-pin-file or KEYHAVEN_PKCS11_PIN"). */
  readonly pinSource: string;
  /** What the token is for, in log lines ("root key HSM", "custom key store cks-…"). */
  readonly purpose: string;
  /** Per connection, once logged in: e.g. find or generate a key (throw Pkcs11ConfigError to stop). */
  readonly prepare: (lib: pkcs11js.PKCS11, session: Handle, mechanism: GcmMechanism) => P;
  /** Sessions kept open: how many operations run at once (default 4). */
  readonly sessions?: number;
  /** An operation (including the wait for a free session) fails after this long (default 5 s). */
  readonly operationTimeoutMs?: number;
  /** How often to reconnect while down, and to check the connection while up (default 1 s / 5 s). */
  readonly reconnectIntervalMs?: number;
  readonly healthCheckIntervalMs?: number;
  readonly logger?: Logger;
}

export interface Connection<P> {
  readonly lib: pkcs11js.PKCS11;
  readonly module: ModuleLease;
  readonly mechanism: GcmMechanism;
  /** What `prepare` returned for this connection (handles are valid only within it). */
  readonly prepared: P;
  readonly sessions: Handle[];
  readonly idle: Handle[];
  readonly waiters: Array<(session: Handle | undefined) => void>;
  inFlight: number;
  lost: boolean;
  finalized: boolean;
}

const PIN_ERRORS = new Set([
  pkcs11js.CKR_PIN_INCORRECT,
  pkcs11js.CKR_PIN_INVALID,
  pkcs11js.CKR_PIN_LEN_RANGE,
  pkcs11js.CKR_PIN_EXPIRED,
]);

export function isPkcs11Error(err: unknown): err is Error & { code: number } {
  return err instanceof pkcs11js.Pkcs11Error;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether the token still answers on this session (a cheap call that changes nothing). */
export function answers(c: Connection<unknown>, session: Handle): boolean {
  try {
    c.lib.C_GetSessionInfo(session);
    return true;
  } catch {
    return false;
  }
}

/** No token with the label: the sidecar is not up yet, or the label is wrong. */
class TokenNotFound extends Error {}

export class Pkcs11Token<P> {
  readonly #options: Required<Omit<Pkcs11TokenOptions<P>, "logger">> & { logger?: Logger };
  #connection: Connection<P> | undefined;
  /** A lost connection whose calls have not all returned: no reconnect before it is finalized. */
  #draining: Connection<P> | undefined;
  /** Why the token cannot be used now; undefined while connected. */
  #down: string | undefined = "not connected yet";
  #downCode: TokenErrorCode | undefined = "NETWORK_ERRORS";
  #fatal = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: Pkcs11TokenOptions<P>) {
    this.#options = {
      sessions: 4,
      operationTimeoutMs: 5000,
      reconnectIntervalMs: 1000,
      healthCheckIntervalMs: 5000,
      ...options,
    };
  }

  /**
   * Connects now. Throws Pkcs11ConfigError for a configuration error (module, PIN, what
   * `prepare` refuses); an unreachable token returns a token that is down and reconnects.
   */
  static open<P>(options: Pkcs11TokenOptions<P>): Pkcs11Token<P> {
    const token = new Pkcs11Token(options);
    token.#tryConnect();
    if (token.#fatal) {
      token.#closed = true;
      clearTimeout(token.#timer);
      throw new Pkcs11ConfigError(token.#down ?? "", token.#downCode);
    }
    return token;
  }

  /** Undefined when the token is usable; otherwise why not (for /readyz, logs, DescribeCustomKeyStores). */
  readiness(): string | undefined {
    return this.#down;
  }

  /** The ConnectionErrorCode of the last failed connection attempt, while down. */
  get errorCode(): TokenErrorCode | undefined {
    return this.#connection ? undefined : this.#downCode;
  }

  get mechanism(): GcmMechanism | undefined {
    return this.#connection?.mechanism;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#connection) this.#lose(this.#connection, "closed");
  }

  /**
   * Runs `fn` on a pooled session with a deadline. A PKCS#11 error escaping `fn` means the
   * token or the socket is gone: the connection is dropped and rebuilt by the timer.
   */
  async withSession<T>(fn: (c: Connection<P>, session: Handle) => Promise<T>): Promise<T> {
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

  #acquire(c: Connection<P>): Promise<Handle> {
    const idle = c.idle.pop();
    if (idle) return Promise.resolve(idle);
    return new Promise((resolve, reject) =>
      c.waiters.push((s) => (s ? resolve(s) : reject(this.#unavailable()))),
    );
  }

  #release(c: Connection<P>, session: Handle): void {
    if (c.lost) return;
    const waiter = c.waiters.shift();
    if (waiter) waiter(session);
    else c.idle.push(session);
  }

  #unavailable(): TokenUnavailableError {
    return new TokenUnavailableError(
      `the HSM token '${this.#options.tokenLabel}' is unavailable (${this.#down ?? "busy"}); the request can be retried`,
    );
  }

  /** Marks the connection gone (once), fails its waiters and finalizes it when idle. */
  #lose(c: Connection<P>, reason: string): void {
    if (c.lost) return;
    c.lost = true;
    if (this.#connection === c) this.#connection = undefined;
    this.#draining = c;
    this.#down = reason;
    this.#downCode = "NETWORK_ERRORS";
    for (const w of c.waiters.splice(0)) w(undefined);
    if (!this.#closed)
      this.#options.logger?.warn({ reason }, `${this.#options.purpose} unavailable`);
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

  /** An idle session's C_GetSessionInfo: notices a token that went away while nothing was asked. */
  #check(c: Connection<P>): void {
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
      this.#downCode = undefined;
      this.#options.logger?.info(
        { token: this.#options.tokenLabel, mechanism: c.mechanism, sessions: c.sessions.length },
        `${this.#options.purpose} connected`,
      );
    } catch (err) {
      this.#fatal = err instanceof Pkcs11ConfigError;
      this.#downCode =
        err instanceof Pkcs11ConfigError
          ? err.code
          : err instanceof TokenNotFound
            ? "CLUSTER_NOT_FOUND"
            : "NETWORK_ERRORS";
      const reason = describe(err);
      if (reason !== this.#down)
        this.#options.logger?.[this.#fatal ? "error" : "warn"](
          { reason },
          `${this.#options.purpose} unavailable`,
        );
      this.#down = reason;
    }
    this.#schedule();
  }

  #connect(): Connection<P> {
    const o = this.#options;
    let module: ModuleLease;
    try {
      module = acquireModule(o.modulePath);
    } catch (err) {
      if (err instanceof ModuleLoadError) throw new Pkcs11ConfigError(err.message);
      throw err;
    }
    const lib = module.lib;
    const sessions: Handle[] = [];
    try {
      const slot = lib
        .C_GetSlotList(true)
        .find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === o.tokenLabel);
      if (!slot)
        throw new TokenNotFound(
          `no token labelled '${o.tokenLabel}' in ${o.modulePath} (for p11-kit-client.so: is the p11-kit server sidecar running, and P11_KIT_SERVER_ADDRESS its socket?)`,
        );
      const first = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      sessions.push(first);
      login(lib, first, o);
      const mechanisms = lib.C_GetMechanismList(slot);
      const mechanism = mechanisms.includes(pkcs11js.CKM_AES_GCM)
        ? "CKM_AES_GCM"
        : mechanisms.includes(pkcs11js.CKM_AES_ECB)
          ? "CKM_AES_ECB"
          : undefined;
      if (!mechanism)
        throw new Pkcs11ConfigError(
          `token '${o.tokenLabel}' offers neither CKM_AES_GCM nor CKM_AES_ECB; Keyhaven needs one of them`,
        );
      const prepared = o.prepare(lib, first, mechanism);
      // Login state is per token and application: the other sessions share it.
      while (sessions.length < o.sessions)
        sessions.push(
          lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION),
        );
      return {
        lib,
        module,
        mechanism,
        prepared,
        sessions,
        idle: [...sessions],
        waiters: [],
        inFlight: 0,
        lost: false,
        finalized: false,
      };
    } catch (err) {
      finalize({ module, lib, sessions, finalized: false });
      throw err;
    }
  }
}

function login(
  lib: pkcs11js.PKCS11,
  session: Handle,
  { pin, tokenLabel, pinSource }: { pin: string; tokenLabel: string; pinSource: string },
): void {
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    if (isPkcs11Error(err) && err.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    if (isPkcs11Error(err) && err.code === pkcs11js.CKR_PIN_LOCKED)
      throw new Pkcs11ConfigError(
        `token '${tokenLabel}' is locked (CKR_PIN_LOCKED): too many wrong PINs; reset the user PIN with the token's SO PIN`,
        "USER_LOCKED_OUT",
      );
    if (isPkcs11Error(err) && PIN_ERRORS.has(err.code))
      throw new Pkcs11ConfigError(
        `token '${tokenLabel}' refused the PIN (${err.message}); check ${pinSource} (not retried: repeated wrong PINs lock a token)`,
        "INVALID_CREDENTIALS",
      );
    throw err;
  }
}

/** Closes what a connection opened and gives back its module lease; errors are expected (the token may be gone). */
function finalize(c: {
  module: ModuleLease;
  lib: pkcs11js.PKCS11;
  sessions: Handle[];
  finalized: boolean;
}): void {
  if (c.finalized) return;
  c.finalized = true;
  for (const s of c.sessions.splice(0)) {
    try {
      c.lib.C_CloseSession(s);
    } catch {
      // The session went with the token.
    }
  }
  c.module.release();
}

/** The labels of the tokens a module shows now (no login), e.g. to check a custom key store's token exists. */
export function tokenLabels(modulePath: string): string[] {
  const module = acquireModule(modulePath);
  try {
    const lib = module.lib;
    return lib.C_GetSlotList(true).map((s) => lib.C_GetTokenInfo(s).label.trimEnd());
  } finally {
    module.release();
  }
}
