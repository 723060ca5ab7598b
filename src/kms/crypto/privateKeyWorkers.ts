/**
 * Private-key operations off the event loop. An RSA-3072 signature or OAEP decryption
 * takes milliseconds of CPU; made on the event loop, it stalls every request behind it.
 * Each such operation comes down to one node:crypto call (`PrivateKeyCall`), which a
 * small pool of worker threads makes instead. Keys travel as KeyObjects (postMessage
 * clones the handle, not the key bytes through JavaScript), results come back as bytes.
 *
 * The workers run `runPrivateKeyCall`'s own source (an eval'd worker with node:crypto
 * only), so the call is made by the same code in a worker as on the event loop.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { KeyObject } from "node:crypto";
import * as nodeCrypto from "node:crypto";

/** The one node:crypto call of a private-key operation, described so that a worker can make it. */
export type PrivateKeyCall =
  | {
      readonly op: "sign";
      /** Hash name, or null for Ed25519. */
      readonly algorithm: string | null;
      readonly key: KeyObject;
      readonly padding?: number;
      readonly saltLength?: number;
      readonly data: Uint8Array;
    }
  | {
      readonly op: "privateEncrypt";
      readonly key: KeyObject;
      readonly padding: number;
      readonly data: Uint8Array;
    }
  | {
      readonly op: "privateDecrypt";
      readonly key: KeyObject;
      readonly padding: number;
      readonly oaepHash: string;
      readonly data: Uint8Array;
    };

/**
 * Makes the call. Self-contained on purpose (its source is the workers' code): it uses
 * nothing but its arguments. A privateDecrypt that fails (wrong key or bytes) gives
 * undefined; any other failure throws.
 */
export function runPrivateKeyCall(
  crypto: Pick<typeof nodeCrypto, "sign" | "privateEncrypt" | "privateDecrypt">,
  call: PrivateKeyCall,
): Buffer | undefined {
  switch (call.op) {
    case "sign":
      return crypto.sign(
        call.algorithm,
        call.data,
        call.padding === undefined
          ? call.key
          : {
              key: call.key,
              padding: call.padding,
              ...(call.saltLength !== undefined && { saltLength: call.saltLength }),
            },
      );
    case "privateEncrypt":
      return crypto.privateEncrypt({ key: call.key, padding: call.padding }, call.data);
    case "privateDecrypt":
      try {
        return crypto.privateDecrypt(
          { key: call.key, padding: call.padding, oaepHash: call.oaepHash },
          call.data,
        );
      } catch {
        return undefined;
      }
  }
}

const WORKER_SOURCE = `
const crypto = require("node:crypto");
const { parentPort } = require("node:worker_threads");
const runPrivateKeyCall = ${runPrivateKeyCall.toString()};
parentPort.on("message", ({ id, call }) => {
  try {
    parentPort.postMessage({ id, result: runPrivateKeyCall(crypto, call) });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

interface Pending {
  resolve(value: Buffer | undefined): void;
  reject(err: Error): void;
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/** Default pool size: the CPUs beside the event loop's, at least one. */
export const defaultPrivateKeyWorkers = (): number => Math.max(1, availableParallelism() - 1);

export class PrivateKeyWorkers {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  #nextId = 0;
  #closed = false;

  /** Workers start on first use, so an idle server or one without asymmetric keys pays nothing. */
  constructor(size = defaultPrivateKeyWorkers()) {
    this.#size = Math.max(1, size);
  }

  /** Makes `call` in the least busy worker. */
  run(call: PrivateKeyCall): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.reject(new Error("the private-key workers are closed"));
    const slot = this.#pick();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, call });
    });
  }

  #pick(): Slot {
    let best: Slot | undefined;
    for (const slot of this.#slots) if (!best || slot.pending.size < best.pending.size) best = slot;
    if (best && (best.pending.size === 0 || this.#slots.length >= this.#size)) return best;
    return this.#start();
  }

  #start(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on("message", (message: { id: number; result?: Uint8Array; error?: string }) => {
      const pending = slot.pending.get(message.id);
      if (!pending) return;
      slot.pending.delete(message.id);
      if (slot.pending.size === 0) worker.unref();
      if (message.error !== undefined) pending.reject(new Error(message.error));
      else
        pending.resolve(
          message.result === undefined
            ? undefined
            : Buffer.from(
                message.result.buffer,
                message.result.byteOffset,
                message.result.byteLength,
              ),
        );
    });
    const fail = (err: Error) => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      for (const pending of slot.pending.values()) pending.reject(err);
      slot.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`a private-key worker exited (${code})`)));
    this.#slots.push(slot);
    return slot;
  }

  /** How many workers run now (started on demand, up to the pool size). */
  get started(): number {
    return this.#slots.length;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.splice(0).map((slot) => slot.worker.terminate()));
  }
}
