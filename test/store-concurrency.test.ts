/**
 * The sqlite store under real concurrency: several threads, each with its own connection
 * to one database file, opening it at the same moment and updating the same key.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, tempDir } from "./support/server.js";

const storeModule = pathToFileURL(
  join(REPO_ROOT, "dist", "src", "kms", "store", "sqliteKeyStore.js"),
).href;
/**
 * Each worker thread opens its own SqliteKeyStore (from the built dist/) on the shared file,
 * optionally creates the key, then increments its description `increments` times.
 */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { storeModule, path, keyId, increments, create } = workerData;
(async () => {
  const { SqliteKeyStore } = await import(storeModule);
  const store = new SqliteKeyStore(path);
  if (create) {
    const record = {
      keyId, arn: "arn:aws:kms:us-east-1:000000000000:key/" + keyId, createdAt: 0,
      description: "0", keySpec: "SYMMETRIC_DEFAULT", keyUsage: "ENCRYPT_DECRYPT",
      origin: "AWS_KMS", state: "Enabled", policy: "{}", tags: [], currentMaterialVersion: 1,
    };
    await store.createKey(record, { keyId, version: 1, createdAt: 0, wrapped: Buffer.alloc(8) });
  }
  for (let i = 0; i < increments; i++) {
    await store.updateKey(keyId, (c) => ({ ...c, description: String(Number(c.description) + 1) }));
  }
  await store.close();
})().then(
  () => parentPort.postMessage({ ok: true }),
  (err) => parentPort.postMessage({ ok: false, error: String((err && err.stack) || err) }),
);
`;
const KEY_ID = "0000aaaa-0000-4000-8000-000000000001";

function run(data: Record<string, unknown>): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: { storeModule, keyId: KEY_ID, ...data },
    });
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

describe("sqlite store concurrency", () => {
  it("threads with their own connections lose no update of one key", async () => {
    const path = join(tempDir(), "keyhaven.db");
    expect(await run({ path, increments: 0, create: true })).toEqual({ ok: true });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => run({ path, increments: 100, create: false })),
    );
    expect(results).toEqual(Array.from({ length: 4 }, () => ({ ok: true })));
    const { SqliteKeyStore } = (await import(
      storeModule
    )) as typeof import("../src/kms/store/sqliteKeyStore.js");
    const store = new SqliteKeyStore(path);
    expect((await store.getKey(KEY_ID))?.description).toBe("400");
    await store.close();
  });

  it("several processes may open a fresh file at once (migrations run once)", async () => {
    for (let round = 0; round < 4; round++) {
      const path = join(tempDir(), "keyhaven.db");
      const results = await Promise.all(
        Array.from({ length: 4 }, () => run({ path, increments: 0, create: false })),
      );
      for (const r of results) expect(r.error ?? "").toBe("");
    }
  });
});
