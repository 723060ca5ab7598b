/**
 * File modes of the real server (issue 12 item 7): every file it writes is 0600 and
 * every folder it makes 0700 whatever the umask, and it refuses to start, saying what to
 * run, when the data folder or the root key is open to group or others.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { kmsClient, spawnServer, tempDir } from "./support/server.js";

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** path → mode of every entry under `dir` (the folder itself included). */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { [dir]: modeOf(dir).toString(8) };
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" }))
    out[join(dir, entry)] = modeOf(join(dir, entry)).toString(8);
  return out;
}

/** What every entry should be: folders 0700, files 0600. */
function expected(dir: string): Record<string, string> {
  const out: Record<string, string> = { [dir]: "700" };
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" }))
    out[join(dir, entry)] = statSync(join(dir, entry)).isDirectory() ? "700" : "600";
  return out;
}

describe("files the key service writes", () => {
  it("are 0600 (folders 0700) under umask 000: root key, credentials, keyhaven.db, -wal, -shm, audit log", async () => {
    const base = tempDir();
    const dataDir = join(base, "data");
    const auditDir = join(base, "audit");
    const auditLog = join(auditDir, "kms.log");
    const server = await spawnServer({
      dataDir,
      firstStart: true,
      umask: 0,
      args: ["--audit-log", auditLog],
    });
    const kms = kmsClient(server);
    try {
      const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      await kms.send(new CreateAliasCommand({ AliasName: "alias/modes", TargetKeyId: key.KeyId }));
      for (let i = 0; i < 20; i++)
        await kms.send(new EncryptCommand({ KeyId: "alias/modes", Plaintext: randomBytes(32) }));
      await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }));

      // While it runs: the WAL and shared-memory files exist next to the database.
      const names = readdirSync(dataDir);
      for (const name of ["root.key", "credentials.yaml", "keyhaven.db", "keyhaven.db-wal"])
        expect(names).toContain(name);
      expect(names).toContain("keyhaven.db-shm");
      expect(modes(dataDir)).toEqual(expected(dataDir));
      expect(modes(auditDir)).toEqual({ [auditDir]: "700", [auditLog]: "600" });
    } finally {
      kms.destroy();
      expect(await server.stop()).toBe(0);
    }
    expect(modes(dataDir)).toEqual(expected(dataDir));
    expect(modeOf(auditLog)).toBe(0o600);
  });
});

describe("start-up refuses loose permissions, saying what to run", () => {
  it.each(["750", "705", "755", "770"])(
    "a data folder with mode %s (and creates nothing in it)",
    async (mode) => {
      const dataDir = join(tempDir(), "data");
      mkdirSync(dataDir);
      chmodSync(dataDir, parseInt(mode, 8));
      await expect(spawnServer({ dataDir, firstStart: true })).rejects.toThrow(
        `run: chmod 700 ${dataDir}`,
      );
      expect(readdirSync(dataDir)).toEqual([]);
    },
  );

  it("a root key readable by its group, also through a symbolic link", async () => {
    const dataDir = tempDir();
    const rootKey = join(dataDir, "root.key");
    writeFileSync(rootKey, randomBytes(32), { mode: 0o600 });
    chmodSync(rootKey, 0o640);
    await expect(spawnServer({ dataDir })).rejects.toThrow(`run: chmod 600 ${rootKey}`);

    const elsewhere = join(tempDir(), "root.key");
    writeFileSync(elsewhere, randomBytes(32), { mode: 0o600 });
    chmodSync(elsewhere, 0o604);
    const linked = tempDir();
    symlinkSync(elsewhere, join(linked, "root.key"));
    await expect(spawnServer({ dataDir: linked })).rejects.toThrow(
      `run: chmod 600 ${join(linked, "root.key")}`,
    );
  });
});
