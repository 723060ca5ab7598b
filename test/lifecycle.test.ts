/**
 * A key's year, in fake time, with the service restarted (same data folder) between
 * steps: automatic rotations at the period, on demand, a rotation that falls due while
 * the server is down, old ciphertexts that keep decrypting, deletion scheduled,
 * cancelled, scheduled again and completed.
 */
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { blobVersion, DAY, newSite, startAt, type LifecycleServer } from "./lifecycleSupport.js";
import { ManualClock } from "./support/manualClock.js";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const text = (s: string) => Buffer.from(s);

async function decrypts(client: KMSClient, blob: Uint8Array, expected: string): Promise<void> {
  const out = await client.send(new DecryptCommand({ CiphertextBlob: blob }));
  expect(Buffer.from(out.Plaintext!).toString()).toBe(expected);
}

describe("a key's year with restarts between steps", () => {
  it("rotates, decrypts old ciphertext, and is deleted only after the waiting period", async () => {
    const site = newSite();
    const clock = new ManualClock(new Date(T0));
    let server: LifecycleServer = await startAt(site, clock);
    const restartAt = async (t: number) => {
      await server.stop();
      clock.set(t);
      server = await startAt(site, clock);
      return server.client;
    };
    let kms = server.client;
    const blobs: { blob: Uint8Array; plain: string }[] = [];
    const seal = async (keyId: string, plain: string) => {
      const out = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: text(plain) }));
      blobs.push({ blob: out.CiphertextBlob!, plain });
      return out.CiphertextBlob!;
    };
    const rotations = async (keyId: string) =>
      (await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations ?? [];

    try {
      // Day 0: a key rotating every 90 days.
      const created = await kms.send(new CreateKeyCommand({}));
      const keyId = created.KeyMetadata!.KeyId!;
      const arn = created.KeyMetadata!.Arn!;
      await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 90 }));
      expect(await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).toMatchObject({
        KeyId: arn,
        KeyRotationEnabled: true,
        RotationPeriodInDays: 90,
        NextRotationDate: new Date(T0 + 90 * DAY),
      });
      // The loop knows that date; it sleeps until then, re-checking hourly meanwhile.
      expect(server.running.lifecycle.nextDue).toBe(T0 + 90 * DAY);
      expect(server.timers.pendingDelays()).toEqual([60 * 60 * 1000]);
      expect(blobVersion(await seal(keyId, "day 0"))).toBe(1);

      // Day 90: the rotation falls due while the server is down; it happens at start.
      kms = await restartAt(T0 + 90 * DAY);
      expect(await rotations(keyId)).toEqual([
        expect.objectContaining({
          KeyId: arn,
          RotationType: "AUTOMATIC",
          RotationDate: new Date(T0 + 90 * DAY),
          KeyMaterialState: "CURRENT",
        }),
      ]);
      expect(blobVersion(await seal(keyId, "day 90"))).toBe(2);
      expect(
        (await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).NextRotationDate,
      ).toEqual(new Date(T0 + 180 * DAY));

      // Day 100: on demand; the automatic schedule is unchanged.
      kms = await restartAt(T0 + 100 * DAY);
      // AWS answers RotateKeyOnDemand with the key id, not the ARN.
      expect((await kms.send(new RotateKeyOnDemandCommand({ KeyId: arn }))).KeyId).toBe(keyId);
      expect((await rotations(keyId)).map((r) => r.RotationType)).toEqual([
        "AUTOMATIC",
        "ON_DEMAND",
      ]);
      expect(
        (await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).NextRotationDate,
      ).toEqual(new Date(T0 + 180 * DAY));
      expect(blobVersion(await seal(keyId, "day 100"))).toBe(3);

      // Day 180, no restart: the timer fires and the loop rotates.
      expect(server.running.lifecycle.nextDue).toBe(T0 + 180 * DAY);
      clock.set(T0 + 180 * DAY);
      server.timers.advanceToNextTimer();
      await server.running.lifecycle.check();
      expect((await rotations(keyId)).length).toBe(3);
      expect(blobVersion(await seal(keyId, "day 180"))).toBe(4);

      // Day 200: disabled keys do not rotate, even past their date...
      kms = await restartAt(T0 + 200 * DAY);
      await kms.send(new DisableKeyCommand({ KeyId: keyId }));
      kms = await restartAt(T0 + 275 * DAY);
      expect((await rotations(keyId)).length).toBe(3);
      // ...and rotate as soon as they are enabled again: the write re-arms the loop at once.
      await kms.send(new EnableKeyCommand({ KeyId: keyId }));
      expect(server.timers.pendingDelays()).toEqual([0]);
      server.timers.advanceToNextTimer();
      await server.running.lifecycle.check();
      const afterEnable = await rotations(keyId);
      expect(afterEnable.length).toBe(4);
      expect(afterEnable[3]).toMatchObject({
        RotationType: "AUTOMATIC",
        RotationDate: new Date(T0 + 275 * DAY),
      });
      expect(
        (await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).NextRotationDate,
      ).toEqual(new Date(T0 + 365 * DAY));

      // Day 280: deletion scheduled with a 7-day window; crypto refuses the key.
      kms = await restartAt(T0 + 280 * DAY);
      const scheduled = await kms.send(
        new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }),
      );
      expect(scheduled).toMatchObject({
        KeyId: arn,
        KeyState: "PendingDeletion",
        PendingWindowInDays: 7,
        DeletionDate: new Date(T0 + 287 * DAY),
      });
      const refused = await failure(
        kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: text("x") })),
      );
      expect(refused).toMatchObject({
        name: "KMSInvalidStateException",
        message: `${arn} is pending deletion.`,
      });
      expect(
        await failure(kms.send(new DecryptCommand({ CiphertextBlob: blobs[0]!.blob }))),
      ).toMatchObject({ name: "KMSInvalidStateException", message: `${arn} is pending deletion.` });
      expect(
        (await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled,
      ).toBe(false);

      // Day 285, after a restart: still pending; cancelled, the key comes back Disabled
      // with its rotation setting restored.
      kms = await restartAt(T0 + 285 * DAY);
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
        KeyState: "PendingDeletion",
        DeletionDate: new Date(T0 + 287 * DAY),
      });
      await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
        KeyState: "Disabled",
        Enabled: false,
      });
      expect(
        (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.DeletionDate,
      ).toBeUndefined();
      await kms.send(new EnableKeyCommand({ KeyId: keyId }));
      expect(
        (await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled,
      ).toBe(true);

      // Every ciphertext of the year decrypts; ReEncrypt moves the oldest to the newest version.
      for (const { blob, plain } of blobs) await decrypts(kms, blob, plain);
      const moved = await kms.send(
        new ReEncryptCommand({ CiphertextBlob: blobs[0]!.blob, DestinationKeyId: keyId }),
      );
      expect(blobVersion(blobs[0]!.blob)).toBe(1);
      expect(blobVersion(moved.CiphertextBlob!)).toBe(5);
      await decrypts(kms, moved.CiphertextBlob!, "day 0");

      // Day 290: an alias, then deletion with the default 30-day window.
      kms = await restartAt(T0 + 290 * DAY);
      await kms.send(new CreateAliasCommand({ AliasName: "alias/doomed", TargetKeyId: keyId }));
      const again = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId }));
      expect(again).toMatchObject({
        PendingWindowInDays: 30,
        DeletionDate: new Date(T0 + 320 * DAY),
      });

      // One millisecond before the date the key is still there...
      kms = await restartAt(T0 + 320 * DAY - 1);
      expect(
        (await kms.send(new DescribeKeyCommand({ KeyId: "alias/doomed" }))).KeyMetadata!.KeyState,
      ).toBe("PendingDeletion");
      // ...and at the date it is gone for good, with its alias and material.
      kms = await restartAt(T0 + 320 * DAY);
      expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toMatchObject({
        name: "NotFoundException",
        message: `Key '${arn}' does not exist`,
      });
      expect(
        await failure(kms.send(new DescribeKeyCommand({ KeyId: "alias/doomed" }))),
      ).toMatchObject({ name: "NotFoundException" });
      expect((await kms.send(new ListAliasesCommand({}))).Aliases ?? []).toEqual([]);
      expect(
        await failure(kms.send(new DecryptCommand({ CiphertextBlob: blobs[1]!.blob }))),
      ).toMatchObject({ name: "NotFoundException" });
      expect(server.output()).toContain('"operation":"lifecycle:DeleteKey"');
    } finally {
      await server.stop();
    }
  });

  it("deletes a key at its date while running, when the loop's timer fires", async () => {
    const site = newSite();
    const clock = new ManualClock(new Date(T0));
    const server = await startAt(site, clock);
    try {
      const kms = server.client;
      const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      expect(server.timers.pendingDelays()).toEqual([60 * 60 * 1000]); // nothing due: the hourly re-check
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      expect(server.running.lifecycle.nextDue).toBe(T0 + 7 * DAY);
      clock.set(T0 + 7 * DAY);
      server.timers.advanceToNextTimer();
      await server.running.lifecycle.check();
      expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toMatchObject({
        name: "NotFoundException",
      });
    } finally {
      await server.stop();
    }
  });

  it("refuses windows and periods outside AWS's ranges, and caps on-demand rotations at 25 even when racing", async () => {
    const server = await startAt(newSite(), new ManualClock(new Date(T0)));
    try {
      const kms = server.client;
      const meta = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      const keyId = meta.KeyId!;
      for (const days of [6, 31, 365])
        expect(
          await failure(
            kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: days })),
          ),
        ).toMatchObject({ name: "ValidationException", status: 400 });
      for (const period of [89, 2561])
        expect(
          await failure(
            kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: period })),
          ),
        ).toMatchObject({ name: "ValidationException" });
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe(
        "Enabled",
      );

      const results = await Promise.allSettled(
        Array.from({ length: 30 }, () => kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }))),
      );
      const refused = results.filter((r) => r.status === "rejected");
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(25);
      expect(refused).toHaveLength(5);
      for (const r of refused)
        expect(r.reason).toMatchObject({
          name: "LimitExceededException",
          message: `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${meta.Arn}`,
        });
      const first = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, Limit: 20 }));
      expect(first.Truncated).toBe(true);
      const rest = await kms.send(
        new ListKeyRotationsCommand({ KeyId: keyId, Limit: 20, Marker: first.NextMarker! }),
      );
      const all = [...first.Rotations!, ...rest.Rotations!];
      expect(all).toHaveLength(25);
      expect(new Set(all.map((r) => r.KeyMaterialId)).size).toBe(25);
      expect(all.filter((r) => r.KeyMaterialState === "CURRENT")).toHaveLength(1);
      const blob = (
        await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: text("after 25") }))
      ).CiphertextBlob!;
      expect(blobVersion(blob)).toBe(26);
    } finally {
      await server.stop();
    }
  });
});
