/**
 * The chart's root-key init step, run exactly as rendered (`node -e SCRIPT ...`) against
 * temp folders, then the real `keyhaven serve` on the resulting data folder: the key
 * from a group-readable Secret file (as kubelet writes it under fsGroup) is the one the
 * store is written with, it never lands in the data folder, and a different key already
 * in the data folder is refused rather than overwritten.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { podSpec, render } from "./chart/support.js";
import { kmsClient, spawnServer, tempDir } from "./support/server.js";
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from "@aws-sdk/client-kms";

interface InitContainer {
  name: string;
  command: string[];
  args: string[];
}

let script: string;

beforeAll(() => {
  const deployment = render({ values: {} }).find(
    (o) => o.kind === "Deployment" && o.metadata.name === "keyhaven",
  )!;
  const init = (podSpec(deployment)!["initContainers"] as InitContainer[]).find(
    (c) => c.name === "root-key",
  )!;
  expect(init.command).toEqual(["/usr/local/bin/node", "-e"]);
  expect(init.args.slice(1)).toEqual([
    "/etc/keyhaven/root-key/root.key",
    "/run/keyhaven/root-key/root.key",
    "/var/lib/keyhaven/store/root.key",
  ]);
  script = init.args[0]!;
}, 120_000);

interface Layout {
  secretFile: string;
  memoryFile: string;
  dataDir: string;
  link: string;
}

function layout(key: Buffer): Layout {
  const root = tempDir("keyhaven-rootkey-");
  for (const d of ["secret", "memory", "data"]) mkdirSync(join(root, d));
  chmodSync(join(root, "data"), 0o2770); // the volume's root under fsGroup
  const secretFile = join(root, "secret", "root.key");
  writeFileSync(secretFile, key);
  chmodSync(secretFile, 0o440); // a Secret volume under fsGroup
  return {
    secretFile,
    memoryFile: join(root, "memory", "root.key"),
    // The chart's layout: the store in a subfolder of the volume, made 0700 by the script.
    dataDir: join(root, "data", "store"),
    link: join(root, "data", "store", "root.key"),
  };
}

function install(l: Layout): { status: number; stderr: string } {
  try {
    execFileSync(process.execPath, ["-e", script, l.secretFile, l.memoryFile, l.link], {
      stdio: "pipe",
    });
    return { status: 0, stderr: "" };
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    return { status: e.status, stderr: e.stderr.toString() };
  }
}

describe("root key from a Secret", () => {
  it("installs the key in memory (0600) and links <data>/root.key to it; the key service uses it across restarts", async () => {
    const key = randomBytes(32);
    const l = layout(key);
    expect(install(l).status).toBe(0);
    expect(statSync(l.memoryFile).mode & 0o777).toBe(0o600);
    expect(statSync(l.dataDir).mode & 0o777).toBe(0o700);
    expect(lstatSync(l.link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(l.link)).toBe(l.memoryFile);
    expect(readFileSync(l.link).equals(key)).toBe(true);

    const server = await spawnServer({ dataDir: l.dataDir });
    let ciphertext: Uint8Array;
    try {
      expect(server.output()).not.toMatch(/generated a new local root key/);
      const kms = kmsClient(server);
      const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
      ({ CiphertextBlob: ciphertext } = (await kms.send(
        new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from("kept") }),
      )) as { CiphertextBlob: Uint8Array });
    } finally {
      await server.stop();
    }
    // The data folder holds the link only, never the key itself.
    expect(lstatSync(l.link).isSymbolicLink()).toBe(true);

    // A restart runs the init step again (the memory volume is new) and still decrypts.
    expect(install(l).status).toBe(0);
    const again = await spawnServer({ dataDir: l.dataDir });
    try {
      const { Plaintext } = await kmsClient(again).send(
        new DecryptCommand({ CiphertextBlob: ciphertext }),
      );
      expect(Buffer.from(Plaintext!).toString()).toBe("kept");
    } finally {
      await again.stop();
    }
  });

  it("refuses a different key already in the data folder and leaves it untouched", () => {
    const l = layout(randomBytes(32));
    const onDisk = randomBytes(32);
    mkdirSync(l.dataDir, { mode: 0o700 });
    writeFileSync(l.link, onDisk, { mode: 0o600 });
    const result = install(l);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/holds a different root key than the Secret/);
    expect(lstatSync(l.link).isFile()).toBe(true);
    expect(readFileSync(l.link).equals(onDisk)).toBe(true);
  });

  it("replaces an identical key file in the data folder by the link", () => {
    const key = randomBytes(32);
    const l = layout(key);
    mkdirSync(l.dataDir, { mode: 0o755 });
    writeFileSync(l.link, key, { mode: 0o600 });
    expect(install(l).status).toBe(0);
    expect(lstatSync(l.link).isSymbolicLink()).toBe(true);
    expect(statSync(l.dataDir).mode & 0o777).toBe(0o700);
  });

  it("moves a store kept at the volume's root (the earlier layout) into the data folder once", () => {
    const l = layout(randomBytes(32));
    const volume = join(l.dataDir, "..");
    writeFileSync(join(volume, "keyhaven.db"), "db");
    writeFileSync(join(volume, "keyhaven.db-wal"), "wal");
    expect(install(l).status).toBe(0);
    expect(readFileSync(join(l.dataDir, "keyhaven.db"), "utf8")).toBe("db");
    expect(readFileSync(join(l.dataDir, "keyhaven.db-wal"), "utf8")).toBe("wal");
    expect(existsSync(join(volume, "keyhaven.db"))).toBe(false);
  });

  it("refuses a Secret that does not hold 32 bytes", () => {
    const l = layout(randomBytes(16));
    const result = install(l);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/must hold 32 bytes, it holds 16/);
  });
});
