/**
 * The root key wraps all key material before it reaches the store. Implementations:
 * `local` (a 256-bit key in a file or Secret) and `pkcs11` (an AES key that
 * never leaves an HSM). Both are async so an HSM round trip fits the same shape.
 */
export interface RootKey {
  /** Short, non-secret identifier (e.g. "local:1a2b3c4d") recorded in the store to catch a swapped root key. */
  readonly id: string;
  /** Encrypts and authenticates `plaintext`, binding `context` (e.g. the key id and version) as AAD. */
  wrap(plaintext: Buffer, context: string): Promise<Buffer>;
  /** Reverses wrap; throws RootKeyError if the blob or the context does not authenticate. */
  unwrap(wrapped: Buffer, context: string): Promise<Buffer>;
  close(): Promise<void>;
  /** Why the key cannot be used now (e.g. its HSM is unreachable); undefined when it can. */
  readiness?(): string | undefined;
}

export class RootKeyError extends Error {
  override name = "RootKeyError";
}

/**
 * The root key exists but cannot be used now (its HSM is unreachable): the request fails
 * (KMSInternalException, which clients retry) and a later one may succeed.
 */
export class RootKeyUnavailableError extends Error {
  override name = "RootKeyUnavailableError";
}
