/**
 * The audit log of the real server (issue 12 item 9): a request whose audit line cannot be
 * written is refused and returns nothing of its effect; a reader that falls behind holds
 * requests back instead of letting a backlog grow; a record stays small whatever the request
 * carried; and kill -9 loses no line of an acknowledged request.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { closeSync, constants, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, EncryptCommand } from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { kmsClient, signedFetch, spawnServer, tempDir } from "./support/server.js";

interface AuditLine {
  msg: string;
  requestID: string;
  eventName: string;
  errorCode?: string;
  requestParameters: Record<string, unknown> | null;
}

const auditLines = (text: string): AuditLine[] =>
  text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as AuditLine);

const AUDIT_UNAVAILABLE = {
  name: "KMSInternalException",
  message: expect.stringMatching(/^The audit log is unavailable, so the request was refused/),
};

describe("an audit line that cannot be written", () => {
  it("refuses the request (500 KMSInternalException) and returns nothing of its effect", async () => {
    // /dev/full fails every write with ENOSPC, as a full disk would.
    const server = await spawnServer({ args: ["--audit-log", "/dev/full"] });
    const kms = kmsClient(server);
    try {
      const created = await failure(kms.send(new CreateKeyCommand({})));
      expect(created).toMatchObject(AUDIT_UNAVAILABLE);
      expect(created).not.toHaveProperty("KeyMetadata");
      // Later requests are refused before they act (the first one acted, unanswered).
      for (const [target, body] of [
        ["Encrypt", { KeyId: "alias/any", Plaintext: "c2VjcmV0" }],
        ["GenerateDataKey", { KeyId: "alias/any", KeySpec: "AES_256" }],
      ] as const) {
        const raw = await signedFetch(server, { target, body: JSON.stringify(body) });
        expect(raw.status).toBe(500);
        expect(raw.json).toEqual({
          __type: "KMSInternalException",
          message: expect.stringMatching(/audit log is unavailable/),
        });
      }
      expect(await (await fetch(`${server.url}/healthz`)).text()).toBe("ok");
    } finally {
      kms.destroy();
      await server.stop();
    }
    expect(server.output()).toContain("audit log unavailable: refusing requests");
  });

  it("holds requests back when the reader stalls (bounded, no backlog) and serves again once it reads", async () => {
    const fifo = join(tempDir(), "audit.fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const drain = () => {
      const chunk = Buffer.alloc(1 << 16);
      let text = "";
      for (;;) {
        try {
          const n = readSync(reader, chunk);
          if (n === 0) return text;
          text += chunk.toString("utf8", 0, n);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EAGAIN") return text;
          throw err;
        }
      }
    };
    const server = await spawnServer({ args: ["--audit-log", fifo] });
    const kms = kmsClient(server);
    try {
      const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      // Nobody reads: the pipe (64 KiB) fills, then a request waits its bounded time and is refused.
      let served = 0;
      let refused: unknown;
      const context = { padding: "p".repeat(1000) }; // ~1.3 KiB audit lines
      while (refused === undefined && served < 1000) {
        try {
          await kms.send(
            new EncryptCommand({
              KeyId: key.KeyId,
              Plaintext: randomBytes(16),
              EncryptionContext: context,
            }),
          );
          served++;
        } catch (err) {
          refused = err;
        }
      }
      expect(refused).toMatchObject(AUDIT_UNAVAILABLE);
      // Everything served is in the pipe: what was held back never piled up in the process.
      expect(served).toBeLessThan(65536 / 1000);
      const backlog = auditLines(drain());
      expect(backlog.filter((l) => l.eventName === "Encrypt" && !l.errorCode)).toHaveLength(served);

      // The reader caught up: the next request's line is written and serving resumes.
      const outcomes: string[] = [];
      for (let i = 0; i < 3; i++)
        outcomes.push(
          await kms
            .send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("x") }))
            .then(
              () => "ok",
              (err: Error) => err.name,
            ),
        );
      expect(outcomes.slice(-2)).toEqual(["ok", "ok"]);
      expect(auditLines(drain()).map((l) => l.eventName)).toEqual([
        "Encrypt",
        "Encrypt",
        "Encrypt",
      ]);
    } finally {
      kms.destroy();
      await server.stop();
      closeSync(reader);
    }
  });
});

describe("an audit record", () => {
  it("stays small: a 280 KB context is refused and logged without it; a long value under the limit is replaced by its length and SHA-256", async () => {
    const auditLog = join(tempDir(), "audit.log");
    const server = await spawnServer({ args: ["--audit-log", auditLog] });
    const kms = kmsClient(server);
    const huge = "tenants/x/files/".repeat(17_500); // 280,000 characters: over the context limit
    const long = "tenants/x/files/".repeat(400); // 6,400 characters: allowed, over the record's 2 KiB
    const outcomes: string[] = [];
    try {
      for (const context of [{ tenant: huge }, { tenant: long }])
        outcomes.push(
          await kms
            .send(
              new EncryptCommand({
                KeyId: "alias/none",
                Plaintext: Buffer.from("x"),
                EncryptionContext: context,
              }),
            )
            .then(
              () => "ok",
              (err: Error) => err.name,
            ),
        );
    } finally {
      kms.destroy();
      await server.stop();
    }
    // The first is refused by the size limit, the second finds no such alias.
    expect(outcomes).toEqual(["ValidationException", "NotFoundException"]);
    const text = readFileSync(auditLog, "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThan(24 * 1024);
    const [refused, truncated] = auditLines(text);
    expect(refused!.errorCode).toBe("ValidationException");
    expect(JSON.stringify(refused)).not.toContain("tenants/x/files/tenants");
    const sha256 = createHash("sha256").update(long).digest("hex");
    expect(truncated!.requestParameters).toMatchObject({
      encryptionContext: { tenant: `[truncated: 6400 characters, sha256:${sha256}]` },
    });
  });
});

describe("kill -9", () => {
  it("loses no audit line of an acknowledged request", async () => {
    const auditLog = join(tempDir(), "audit.log");
    const server = await spawnServer({ args: ["--audit-log", auditLog] });
    const kms = kmsClient(server);
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const acknowledged: string[] = [];
    const killAfter = randomInt(200, 400);
    let killed: Promise<void> | undefined;
    const worker = async () => {
      while (killed === undefined) {
        try {
          const out = await kms.send(
            new EncryptCommand({ KeyId: key.KeyId, Plaintext: randomBytes(32) }),
          );
          acknowledged.push(out.$metadata.requestId!);
          if (acknowledged.length === killAfter) killed = server.kill();
        } catch {
          return; // the server is gone; requests in flight at the kill were not acknowledged
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await killed;
    kms.destroy();
    expect(server.process.signalCode).toBe("SIGKILL");
    expect(acknowledged.length).toBeGreaterThanOrEqual(killAfter);
    const written = new Set(auditLines(readFileSync(auditLog, "utf8")).map((l) => l.requestID));
    expect(acknowledged.filter((id) => !written.has(id))).toEqual([]);
  });
});
