import { createPublicKey, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalRootKey } from "../rootkey/localRootKey.js";
import type { RootKey } from "../rootkey/rootKey.js";
import { SqliteKeyStore } from "../store/sqliteKeyStore.js";
import { openPeeringKey, type PeeringKey } from "./peeringKey.js";

const publicOf = (key: PeeringKey) =>
  createPublicKey(key.privateKey).export({ type: "spki", format: "der" });

describe("openPeeringKey", () => {
  it("gives every process on one store the same key pair, however their starts interleave", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "keyhaven-peering-")), "keyhaven.db");
    const local = new LocalRootKey(randomBytes(32));
    // Two connections to one file, as two `serve --workers` processes have. The second
    // finds no key, then generates and wraps its own slowly: the first has made, stored
    // and opened its key in the meantime.
    const [first, second] = [new SqliteKeyStore(file), new SqliteKeyStore(file)];
    let firstDone!: () => void;
    const firstOpened = new Promise<void>((resolve) => (firstDone = resolve));
    const slow: RootKey = {
      id: local.id,
      wrap: async (plaintext, context) => (await firstOpened, local.wrap(plaintext, context)),
      unwrap: (wrapped, context) => local.unwrap(wrapped, context),
      close: async () => {},
    };
    try {
      const secondKey = openPeeringKey(second, slow);
      const firstKey = await openPeeringKey(first, local);
      firstDone();
      const keys = [firstKey, await secondKey, await openPeeringKey(first, local)];
      for (const key of keys) {
        expect(key.publicKeyDer.equals(firstKey.publicKeyDer)).toBe(true);
        expect(publicOf(key).equals(firstKey.publicKeyDer)).toBe(true);
      }
    } finally {
      await first.close();
      await second.close();
    }
  });
});
