/**
 * Where the agent keeps a workload's data key between pod starts — only its
 * ciphertext (and the key it is encrypted under), never the plaintext. The default in a
 * pod is a Secret in the pod's namespace (src/kube/secretDataKeyStore.ts); a directory
 * store serves local runs and tests.
 *
 * Two pods of one workload starting together may both generate a key: `create` is
 * create-if-absent, and the loser reads and uses the winner's key, so every pod of the
 * workload ends up with the same data key.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface StoredDataKey {
  readonly ciphertext: Buffer;
  /** The key ARN the ciphertext is encrypted under (as GenerateDataKey answered). */
  readonly keyId: string;
}

export interface DataKeyStore {
  /** Human-readable location, for messages. */
  describe(name: string): string;
  get(name: string): Promise<StoredDataKey | undefined>;
  /** Creates the entry unless it exists; never overwrites. */
  create(name: string, value: StoredDataKey): Promise<"created" | "exists">;
}

/** A store failure; `permanent` ones (forbidden, invalid) are not retried. */
export class DataKeyStoreError extends Error {
  override name = "DataKeyStoreError";
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** One JSON file per data key in `dir` (mode 0600), created with O_EXCL. */
export function directoryDataKeyStore(dir: string): DataKeyStore {
  const path = (name: string) => {
    if (!NAME.test(name)) throw new DataKeyStoreError(`invalid data-key name '${name}'`, true);
    return join(dir, `${name}.json`);
  };
  return {
    describe: (name) => path(name),
    async get(name) {
      let text: string;
      try {
        text = readFileSync(path(name), "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new DataKeyStoreError(
          `could not read ${path(name)}: ${(err as Error).message}`,
          true,
        );
      }
      const v = JSON.parse(text) as { ciphertext?: unknown; keyId?: unknown };
      if (typeof v.ciphertext !== "string" || typeof v.keyId !== "string")
        throw new DataKeyStoreError(`${path(name)} is not a keyhaven data-key file`, true);
      return { ciphertext: Buffer.from(v.ciphertext, "base64"), keyId: v.keyId };
    },
    async create(name, value) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(
          path(name),
          JSON.stringify({ ciphertext: value.ciphertext.toString("base64"), keyId: value.keyId }),
          { flag: "wx", mode: 0o600 },
        );
        return "created";
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
        throw new DataKeyStoreError(
          `could not write ${path(name)}: ${(err as Error).message}`,
          true,
        );
      }
    },
  };
}
