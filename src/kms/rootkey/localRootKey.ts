/**
 * `local` root key: 32 random bytes in a file created with mode 0600 on first start.
 *
 * Wrapped blob, version 1:  0x01 ‖ IV (12) ‖ AES-256-GCM ciphertext ‖ tag (16),
 * with AAD = "keyhaven/wrap/v1|" ‖ context.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { RootKeyError, type RootKey } from "./rootKey.js";

const VERSION = 0x01;

export class LocalRootKey implements RootKey {
  readonly id: string;
  readonly #key: KeyObject;

  constructor(material: Buffer) {
    if (material.length !== 32)
      throw new RootKeyError(`a local root key is 32 bytes, got ${material.length}`);
    this.#key = createSecretKey(material);
    this.id = `local:${createHash("sha256").update("keyhaven/root-key-id").update(material).digest("hex").slice(0, 16)}`;
  }

  /** Loads the key from `path`, creating it (0600, fsynced) if it does not exist yet. */
  static openOrCreate(path: string): { rootKey: LocalRootKey; created: boolean } {
    let created = false;
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        writeSync(fd, randomBytes(32));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const mode = statSync(path).mode & 0o077;
    if (mode !== 0)
      throw new RootKeyError(
        `root key file ${path} is readable by group or others; run: chmod 600 ${path}`,
      );
    return { rootKey: new LocalRootKey(readFileSync(path)), created };
  }

  async wrap(plaintext: Buffer, context: string): Promise<Buffer> {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(`keyhaven/wrap/v1|${context}`));
    return Buffer.concat([
      Buffer.of(VERSION),
      iv,
      cipher.update(plaintext),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    if (wrapped.length < 29 || wrapped[0] !== VERSION)
      throw new RootKeyError("wrapped material has an unknown format");
    const decipher = createDecipheriv("aes-256-gcm", this.#key, wrapped.subarray(1, 13));
    decipher.setAAD(Buffer.from(`keyhaven/wrap/v1|${context}`));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
    try {
      return Buffer.concat([
        decipher.update(wrapped.subarray(13, wrapped.length - 16)),
        decipher.final(),
      ]);
    } catch {
      throw new RootKeyError("wrapped material does not authenticate under this root key");
    }
  }

  async close(): Promise<void> {}
}
