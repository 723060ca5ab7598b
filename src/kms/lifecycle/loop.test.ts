import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { pooledRandom } from "../crypto/random.js";
import { KeyService } from "../keyService.js";
import { LocalRootKey } from "../rootkey/localRootKey.js";
import type { RootKey } from "../rootkey/rootKey.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { SqliteKeyStore } from "../store/sqliteKeyStore.js";
import { DAY_MS } from "../keys/dueDates.js";
import { ManualClock } from "../../../test/support/manualClock.js";
import { symmetricKeyRecord } from "../../../test/support/keyRecords.js";
import { LifecycleLoop } from "./loop.js";

const T0 = Date.parse("2026-05-01T00:00:00Z");
const HOUR = 60 * 60 * 1000;

/** A root key that can be made to fail, to see how the loop handles a failing action. */
class FlakyRootKey implements RootKey {
  readonly id = "test";
  failing = false;
  readonly #inner = new LocalRootKey(Buffer.alloc(32, 1));
  wrap(p: Buffer, c: string) {
    return this.failing ? Promise.reject(new Error("HSM unreachable")) : this.#inner.wrap(p, c);
  }
  unwrap(w: Buffer, c: string) {
    return this.#inner.unwrap(w, c);
  }
  async close() {}
}

const stores: SqliteKeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function setup() {
  const clock = new ManualClock(T0);
  const store = new SqliteKeyStore(join(mkdtempSync(join(tmpdir(), "keyhaven-loop-")), "db"));
  stores.push(store);
  const rootKey = new FlakyRootKey();
  const service = new KeyService({
    account: "000000000000",
    region: "us-east-1",
    store,
    rootKey,
    clock,
    random: pooledRandom(),
  });
  let logged = "";
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _e, done) {
        logged += chunk.toString();
        done();
      },
    }),
  );
  // The loop's timer is held on a clock of its own and fired by hand.
  const timers = new ManualClock(T0);
  const loop = new LifecycleLoop(service, { logger, timers });
  const addKey = async (fields: Partial<KeyRecord>) => {
    const keyId = randomUUID();
    const key = symmetricKeyRecord({ keyId, arn: service.keyArn(keyId), createdAt: T0, ...fields });
    const wrapped = await service.wrapMaterial(keyId, 1, Buffer.alloc(32, 2));
    await store.createKey(key, { keyId, version: 1, createdAt: T0, wrapped });
    return keyId;
  };
  return {
    store,
    rootKey,
    loop,
    timers,
    addKey,
    logged: () => logged,
    setNow: (t: number) => clock.set(t),
  };
}

describe("LifecycleLoop", () => {
  it("backs off a minute after a failing action instead of spinning, then succeeds", async () => {
    const t = await setup();
    const keyId = await t.addKey({
      rotationEnabled: true,
      rotationPeriodInDays: 90,
      nextRotationAt: T0 - 1,
    });
    t.rootKey.failing = true;
    const report = await t.loop.start();
    expect(report.failed).toEqual([keyId]);
    expect(t.timers.pendingDelays()).toEqual([60_000]);
    expect(t.logged()).toContain('"msg":"lifecycle action failed; retrying at the next check"');

    t.rootKey.failing = false;
    t.setNow(T0 + 60_000);
    t.timers.advanceToNextTimer();
    const second = await t.loop.check();
    expect(second.rotated).toEqual([keyId]);
    expect((await t.store.getKey(keyId))!.currentMaterialVersion).toBe(2);
    expect(t.loop.nextDue).toBe(T0 + 60_000 + 90 * DAY_MS);
    expect(t.timers.pendingDelays()).toEqual([HOUR]);
    await t.loop.stop();
  });

  it("wakes at a nearer date as soon as a write stores one, and not after stop()", async () => {
    const t = await setup();
    await t.loop.start();
    expect(t.timers.pendingDelays()).toEqual([HOUR]);
    const keyId = await t.addKey({});
    await t.store.updateKey(keyId, (k) => ({
      ...k,
      state: "PendingDeletion",
      deletionDate: T0 + 10 * 60_000,
    }));
    expect(t.loop.nextDue).toBe(T0 + 10 * 60_000);
    expect(t.timers.pendingDelays()).toEqual([10 * 60_000]);
    await t.loop.stop();
    expect(t.timers.pendingTimers).toBe(0);
    await t.store.updateKey(keyId, (k) => ({ ...k, deletionDate: T0 + 60_000 }));
    expect(t.timers.pendingTimers).toBe(0);
  });

  it("does nothing twice: concurrent checks share one run", async () => {
    const t = await setup();
    const keyId = await t.addKey({
      rotationEnabled: true,
      rotationPeriodInDays: 90,
      nextRotationAt: T0,
    });
    const [a, b] = await Promise.all([t.loop.check(), t.loop.check()]);
    expect(a).toBe(b);
    expect(a.rotated).toEqual([keyId]);
    expect((await t.store.getKey(keyId))!.currentMaterialVersion).toBe(2);
    await t.loop.stop();
  });
});
