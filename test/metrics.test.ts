/**
 * The key service's /metrics under a short load of real SDK calls (some failing), read
 * back with an independent parser of the exposition format: request counts by operation
 * and outcome, latency histograms, keys by state and spec, lifecycle actions, audit and
 * root-key health.
 */
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY, newSite, startAt, type LifecycleServer } from "./lifecycleSupport.js";
import { ManualClock } from "./support/manualClock.js";
import { failure } from "./support/errors.js";
import { parseExposition, type Exposition } from "./support/exposition.js";
import { signedFetch } from "./support/server.js";

async function scrape(url: string): Promise<Exposition> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

const REQUESTS = "keyhaven_kms_requests_total";
const DURATION = "keyhaven_kms_request_duration_seconds";

describe("the exposition parser", () => {
  it("reads types, labels with escapes, and special values", () => {
    const e = parseExposition(
      [
        "# HELP x_total Things.",
        "# TYPE x_total counter",
        'x_total{a="q\\"uo\\\\te",b="line\\nbreak"} 3',
        "# TYPE h histogram",
        'h_bucket{le="+Inf"} 7',
        "up 1 1700000000000",
      ].join("\n"),
    );
    expect(e.types.get("x_total")).toBe("counter");
    expect(e.value("x_total", { a: 'q"uo\\te', b: "line\nbreak" })).toBe(3);
    expect(e.select("h_bucket")[0]!.labels["le"]).toBe("+Inf");
    expect(e.value("up")).toBe(1);
    expect(() => parseExposition("x{a=unquoted} 1")).toThrow(/bad labels/);
  });
});

describe("key service /metrics", () => {
  const clock = new ManualClock(new Date("2026-03-01T00:00:00Z"));
  const site = newSite();
  let server: LifecycleServer;
  let client: KMSClient;
  let keyId: string;

  beforeAll(async () => {
    server = await startAt(site, clock);
    client = server.client;
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });
  afterAll(() => server?.stop());

  it("counts requests by operation and outcome, with a latency histogram per operation", async () => {
    const url = server.running.url;
    const before = await scrape(url);
    // Series exist (at zero) for every operation before its first call.
    expect(before.value(REQUESTS, { operation: "Sign", outcome: "ok" })).toBe(0);
    expect(before.value(`${DURATION}_count`, { operation: "Sign" })).toBe(0);

    // A short load: 40 encryptions and 40 decryptions, 8 at a time.
    const plaintext = Buffer.from("metrics");
    for (let batch = 0; batch < 5; batch++) {
      const blobs = await Promise.all(
        Array.from({ length: 8 }, () =>
          client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })),
        ),
      );
      await Promise.all(
        blobs.map((b) => client.send(new DecryptCommand({ CiphertextBlob: b.CiphertextBlob! }))),
      );
    }
    // Failures: a blob that is no ciphertext, unknown keys, an unknown operation, a bad signature.
    const good = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })))
      .CiphertextBlob!;
    for (let i = 0; i < 5; i++) {
      const tampered = Buffer.from(good);
      tampered[tampered.length - 1 - i]! ^= 1;
      expect(
        (await failure(client.send(new DecryptCommand({ CiphertextBlob: tampered })))).name,
      ).toBe("InvalidCiphertextException");
    }
    for (let i = 0; i < 3; i++)
      expect(
        (await failure(client.send(new DescribeKeyCommand({ KeyId: `alias/missing-${i}` })))).name,
      ).toBe("NotFoundException");
    const handle = { ...server.running, region: "us-east-1", credentials: site.credential };
    const unknown = await signedFetch(handle, {
      target: "NoSuchOperation",
      body: "{}",
      signingDate: clock.now(),
    });
    expect(unknown.json?.__type).toBe("UnknownOperationException");
    const forged = await signedFetch(handle, {
      target: "Encrypt",
      body: JSON.stringify({ KeyId: keyId, Plaintext: plaintext.toString("base64") }),
      credentials: { accessKeyId: site.credential.accessKeyId, secretAccessKey: "wrong" },
      signingDate: clock.now(),
    });
    expect(forged.json?.__type).toBe("InvalidSignatureException");

    const m = await scrape(url);
    expect(m.types.get(REQUESTS)).toBe("counter");
    expect(m.types.get(DURATION)).toBe("histogram");
    expect(m.value(REQUESTS, { operation: "Encrypt", outcome: "ok" })).toBe(41);
    expect(m.value(REQUESTS, { operation: "Encrypt", outcome: "InvalidSignatureException" })).toBe(
      1,
    );
    expect(m.value(REQUESTS, { operation: "Decrypt", outcome: "ok" })).toBe(40);
    expect(m.value(REQUESTS, { operation: "Decrypt", outcome: "InvalidCiphertextException" })).toBe(
      5,
    );
    expect(m.value(REQUESTS, { operation: "DescribeKey", outcome: "NotFoundException" })).toBe(3);
    // Caller-supplied operation names never become labels.
    expect(m.value(REQUESTS, { operation: "Unknown", outcome: "UnknownOperationException" })).toBe(
      1,
    );
    expect(m.select(REQUESTS, { operation: "NoSuchOperation" })).toEqual([]);

    // The histogram: cumulative buckets, +Inf equal to the count, every request observed.
    for (const [operation, count] of [
      ["Encrypt", 42],
      ["Decrypt", 45],
    ] as const) {
      const buckets = m.select(`${DURATION}_bucket`, { operation });
      const bounds = buckets.map((b) =>
        b.labels["le"] === "+Inf" ? Infinity : Number(b.labels["le"]),
      );
      expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
      expect(bounds.at(-1)).toBe(Infinity);
      expect(bounds).toContain(0.001);
      const counts = buckets.map((b) => b.value);
      counts.forEach((c, i) => expect(c).toBeGreaterThanOrEqual(i === 0 ? 0 : counts[i - 1]!));
      expect(counts.at(-1)).toBe(count);
      expect(m.value(`${DURATION}_count`, { operation })).toBe(count);
      const sum = m.value(`${DURATION}_sum`, { operation });
      expect(sum).toBeGreaterThan(0);
      expect(sum).toBeLessThan(count * 5);
    }
    // Low cardinality: no key id anywhere, in labels or otherwise.
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).not.toContain(keyId);
    // /metrics itself is not a KMS request and leaves no audit line.
    expect(server.output()).not.toMatch(/"eventName":"Unknown"[^\n]*metrics/);
  });

  it("shows keys by state and spec, lifecycle actions, audit and root-key health", async () => {
    const url = server.running.url;
    const rotating = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await client.send(new EnableKeyRotationCommand({ KeyId: rotating, RotationPeriodInDays: 90 }));
    const disabled = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await client.send(new DisableKeyCommand({ KeyId: disabled }));
    await client.send(new CreateKeyCommand({ KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }));
    const doomed = (
      await client.send(
        new CreateKeyCommand({ KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" }),
      )
    ).KeyMetadata!.KeyId!;
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: doomed, PendingWindowInDays: 7 }));

    const m = await scrape(url);
    expect(m.types.get("keyhaven_kms_keys")).toBe("gauge");
    const keys = (state: string, spec: string) =>
      m.value("keyhaven_kms_keys", { state, key_spec: spec });
    expect(keys("Enabled", "SYMMETRIC_DEFAULT")).toBe(2);
    expect(keys("Disabled", "SYMMETRIC_DEFAULT")).toBe(1);
    expect(keys("Enabled", "ECC_NIST_P256")).toBe(1);
    expect(keys("PendingDeletion", "HMAC_256")).toBe(1);
    expect(m.select("keyhaven_kms_keys").reduce((n, s) => n + s.value, 0)).toBe(5);
    expect(m.value("keyhaven_kms_lifecycle_actions_total", { action: "DeleteKey" })).toBe(0);
    expect(m.value("keyhaven_kms_root_key_up")).toBe(1);
    expect(m.value("keyhaven_kms_audit_backlog_bytes")).toBeGreaterThanOrEqual(0);
    expect(m.value("keyhaven_kms_audit_write_failures_total")).toBe(0);
    expect(m.select("process_cpu_seconds_total")).toHaveLength(1);

    // 91 days on: the deletion and the rotation fall due and the lifecycle loop performs them.
    clock.advance(91 * DAY);
    server.timers.advanceToNextTimer();
    await server.running.lifecycle.check();
    const after = await scrape(url);
    expect(after.value("keyhaven_kms_lifecycle_actions_total", { action: "DeleteKey" })).toBe(1);
    expect(after.value("keyhaven_kms_lifecycle_actions_total", { action: "RotateKey" })).toBe(1);
    expect(after.value("keyhaven_kms_lifecycle_failures_total")).toBe(0);
    expect(after.select("keyhaven_kms_keys", { state: "PendingDeletion" })).toEqual([]);
    expect(
      after.value("keyhaven_kms_keys", { state: "Enabled", key_spec: "SYMMETRIC_DEFAULT" }),
    ).toBe(2);
  });
});
