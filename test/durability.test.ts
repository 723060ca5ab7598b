/**
 * Restarts and crashes of the real server on one data folder: a clean restart keeps every
 * key, alias, state and ciphertext; after kill -9 at a random moment of a write burst, every
 * write the server acknowledged is still there.
 */
import { randomBytes, randomInt } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  ListResourceTagsCommand,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import {
  MAIN_JS,
  kmsClient,
  spawnServer,
  tempDir,
  writeCredentialsFile,
} from "./support/server.js";

describe("a restart in the middle", () => {
  it("keeps keys, aliases, states, tags and ciphertexts", async () => {
    const dataDir = tempDir();
    const credentials = writeCredentialsFile(dataDir);
    const first = await spawnServer({ dataDir, credentials });
    let kms = kmsClient(first);
    const key = (await kms.send(new CreateKeyCommand({ Description: "survivor" }))).KeyMetadata!;
    const disabled = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: "alias/survivor", TargetKeyId: key.KeyId }));
    const enc = await kms.send(
      new EncryptCommand({
        KeyId: "alias/survivor",
        Plaintext: Buffer.from("kept across restarts"),
        EncryptionContext: { a: "b" },
      }),
    );
    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: key.Arn, KeySpec: "AES_256" }));
    const encDisabled = await kms.send(
      new EncryptCommand({ KeyId: disabled.KeyId, Plaintext: Buffer.from("x") }),
    );
    await kms.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
    kms.destroy();
    expect(await first.stop()).toBe(0);

    const second = await spawnServer({ dataDir, credentials });
    kms = kmsClient(second);
    try {
      const described = await kms.send(new DescribeKeyCommand({ KeyId: "alias/survivor" }));
      expect(described.KeyMetadata).toMatchObject({
        Arn: key.Arn,
        Description: "survivor",
        KeyState: "Enabled",
      });
      const dec = await kms.send(
        new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: "b" } }),
      );
      expect(Buffer.from(dec.Plaintext!).toString()).toBe("kept across restarts");
      const dkDec = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }));
      expect(Buffer.from(dkDec.Plaintext!).equals(Buffer.from(dk.Plaintext!))).toBe(true);
      expect(
        await failure(kms.send(new DecryptCommand({ CiphertextBlob: encDisabled.CiphertextBlob }))),
      ).toMatchObject({ name: "DisabledException" });
      expect((await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags).toEqual([]);
    } finally {
      kms.destroy();
      expect(await second.stop()).toBe(0);
    }
  });

  it("refuses to start with a root key that is not the store's", async () => {
    const dataDir = tempDir();
    const credentials = writeCredentialsFile(dataDir);
    const first = await spawnServer({ dataDir, credentials });
    const kms = kmsClient(first);
    await kms.send(new CreateKeyCommand({}));
    kms.destroy();
    await first.stop();
    writeFileSync(join(dataDir, "root.key"), randomBytes(32), { mode: 0o600 });
    const child = spawn(
      process.execPath,
      [
        MAIN_JS,
        "serve",
        "--data",
        dataDir,
        "--listen",
        "127.0.0.1:0",
        "--credentials",
        credentials.path,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "" } },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("is not the one this store was written with");
  });
});

describe("kill -9", () => {
  it("loses no acknowledged key, alias or ciphertext", async () => {
    const dataDir = tempDir();
    const credentials = writeCredentialsFile(dataDir);
    const server = await spawnServer({ dataDir, credentials });
    const kms = kmsClient(server);
    const keys: string[] = [];
    const aliases = new Map<string, string>();
    const ciphertexts: { blob: Uint8Array; plaintext: Buffer; context: Record<string, string> }[] =
      [];
    // Kill once a random number of writes has been acknowledged, with more still in flight.
    const killAfter = randomInt(30, 120);
    let acknowledged = 0;
    let killed: Promise<void> | undefined;
    const ack = () => {
      if (++acknowledged === killAfter) killed = server.kill();
    };

    const worker = async (w: number) => {
      for (let i = 0; killed === undefined; i++) {
        try {
          const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
          keys.push(key.KeyId!);
          ack();
          const alias = `alias/burst-${w}-${i}`;
          await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
          aliases.set(alias, key.KeyId!);
          ack();
          for (let j = 0; j < 3; j++) {
            const plaintext = randomBytes(randomInt(1, 200));
            const context = { worker: String(w), n: `${i}.${j}` };
            const out = await kms.send(
              new EncryptCommand({
                KeyId: alias,
                Plaintext: plaintext,
                EncryptionContext: context,
              }),
            );
            ciphertexts.push({ blob: out.CiphertextBlob!, plaintext, context });
            ack();
          }
        } catch {
          return; // the server is gone; requests in flight at the kill are not acknowledged
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await killed;
    kms.destroy();
    expect(server.process.signalCode).toBe("SIGKILL");
    expect(acknowledged).toBeGreaterThanOrEqual(killAfter);

    const restarted = await spawnServer({ dataDir, credentials });
    const after = kmsClient(restarted);
    try {
      for (const keyId of keys) {
        const d = await after.send(new DescribeKeyCommand({ KeyId: keyId }));
        expect(d.KeyMetadata?.KeyState).toBe("Enabled");
      }
      for (const [alias, keyId] of aliases) {
        const d = await after.send(new DescribeKeyCommand({ KeyId: alias }));
        expect(d.KeyMetadata?.KeyId).toBe(keyId);
      }
      for (const c of ciphertexts) {
        const d = await after.send(
          new DecryptCommand({ CiphertextBlob: c.blob, EncryptionContext: c.context }),
        );
        expect(Buffer.from(d.Plaintext!).equals(c.plaintext)).toBe(true);
      }
    } finally {
      after.destroy();
      expect(await restarted.stop()).toBe(0);
    }
  });
});
