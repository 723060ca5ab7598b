/**
 * Logs and audit lines of the real server never contain plaintext, data keys, random bytes,
 * the secret access key or a request signature, and there is one audit line per request.
 */
import { randomBytes } from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  ReEncryptCommand,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { kmsClient, signedFetch, spawnServer } from "./support/server.js";

interface AuditLine {
  msg: string;
  audit?: boolean;
  operation: string | null;
  principal: string | null;
  /** CloudTrail's shape: { accountId, type, ARN }. */
  resources: { ARN: string }[];
  outcome: "success" | "error";
  errorCode?: string;
}

describe("logs", () => {
  it("hold no secrets, and one audit line per request", async () => {
    const server = await spawnServer();
    const kms = kmsClient(server);
    const signatures: string[] = [];
    kms.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        const m = /Signature=([0-9a-f]{64})/.exec(headers["authorization"] ?? "");
        if (m) signatures.push(m[1]!);
        return next(args);
      },
      { step: "deserialize", name: "recordSignatures" },
    );
    const secrets: Buffer[] = [];
    let requests = 0;
    const send: typeof kms.send = ((command: Parameters<typeof kms.send>[0]) => {
      requests++;
      return kms.send(command);
    }) as typeof kms.send;

    const key = (await send(new CreateKeyCommand({}))).KeyMetadata!;
    const other = (await send(new CreateKeyCommand({}))).KeyMetadata!;
    for (let i = 0; i < 5; i++) {
      const plaintext = randomBytes(48);
      secrets.push(plaintext);
      const enc = await send(
        new EncryptCommand({
          KeyId: key.Arn,
          Plaintext: plaintext,
          EncryptionContext: { i: `${i}` },
        }),
      );
      await send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: { i: `${i}` },
        }),
      );
      await send(
        new ReEncryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          SourceEncryptionContext: { i: `${i}` },
          DestinationKeyId: other.KeyId,
        }),
      );
      const dk = await send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }));
      secrets.push(Buffer.from(dk.Plaintext!));
      const random = await send(new GenerateRandomCommand({ NumberOfBytes: 32 }));
      secrets.push(Buffer.from(random.Plaintext!));
    }
    // Failing requests that carry secrets: too long a plaintext, a wrong context, a disabled path.
    const tooLong = randomBytes(4097);
    secrets.push(tooLong.subarray(0, 48));
    expect(
      await failure(send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: tooLong }))),
    ).toMatchObject({ name: "ValidationException" });
    const sensitive = randomBytes(40);
    secrets.push(sensitive);
    expect(
      await failure(send(new EncryptCommand({ KeyId: "alias/missing", Plaintext: sensitive }))),
    ).toMatchObject({ name: "NotFoundException" });
    // A raw request with a broken body that embeds a secret-looking value.
    const raw = randomBytes(24);
    secrets.push(raw);
    const broken = await signedFetch(server, {
      target: "Encrypt",
      body: `{"KeyId":"${key.KeyId}","Plaintext":"${raw.toString("base64")}"`,
    });
    expect(broken.json?.__type).toBe("SerializationException");
    requests++;

    kms.destroy();
    expect(await server.stop()).toBe(0);
    const output = server.output() + server.stderr();

    expect(signatures.length).toBe(requests - 1);
    for (const signature of signatures) expect(output).not.toContain(signature);
    expect(output).not.toContain(server.credentials.secretAccessKey);
    for (const secret of secrets) {
      for (const encoded of [
        secret.toString("base64"),
        secret.toString("base64url"),
        secret.toString("hex"),
        secret.toString("hex").toUpperCase(),
        // a run of the bytes as a JSON array, as a Buffer would serialize
        JSON.stringify([...secret.subarray(0, 12)]).slice(1, -1),
      ]) {
        expect(output).not.toContain(encoded);
      }
    }

    const audit = output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as AuditLine)
      .filter((l) => l.msg === "kms request");
    expect(audit).toHaveLength(requests);
    const encrypts = audit.filter((l) => l.operation === "Encrypt" && l.outcome === "success");
    expect(encrypts).toHaveLength(5);
    for (const line of encrypts) {
      expect(line.principal).toBe(server.credentials.principal);
      expect(line.resources.map((r) => r.ARN)).toEqual([key.Arn]);
    }
    const reEncrypts = audit.filter((l) => l.operation === "ReEncrypt");
    expect(new Set(reEncrypts.flatMap((l) => l.resources.map((r) => r.ARN)))).toEqual(
      new Set([key.Arn, other.Arn]),
    );
    expect(audit.filter((l) => l.outcome === "error").map((l) => l.errorCode)).toEqual([
      "ValidationException",
      "NotFoundException",
      "SerializationException",
    ]);
  });
});
