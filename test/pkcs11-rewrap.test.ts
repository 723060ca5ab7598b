/**
 * `keyhaven rewrap` between the local root key and the HSM (SoftHSM2 behind a real
 * `p11-kit server`), run as the real program: what was encrypted under one root key
 * decrypts under the other, both ways. Interrupted runs: src/kms/rewrap.test.ts.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  kmsClient,
  MAIN_JS,
  spawnServer,
  tempDir,
  writeCredentialsFile,
} from "./support/server.js";
import { P11_KIT_CLIENT, startSoftHsm, type SoftHsm } from "./support/softhsm.js";

let hsm: SoftHsm;
let pinFile: string;

beforeAll(async () => {
  hsm = await startSoftHsm();
  pinFile = join(tempDir("keyhaven-pin-"), "pin");
  writeFileSync(pinFile, hsm.pin, { mode: 0o600 });
});
afterAll(() => hsm?.stop());

const pkcs11Flags = () => [
  "--pkcs11-module",
  P11_KIT_CLIENT,
  "--pkcs11-token-label",
  hsm.tokenLabel,
  "--pkcs11-pin-file",
  pinFile,
];

function rewrap(
  dataDir: string,
  from: string,
  to: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN_JS, "rewrap", "--data", dataDir, "--from", from, "--to", to, ...pkcs11Flags()],
      { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...hsm.env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("keyhaven rewrap", () => {
  it("moves a store from the local root key to the HSM and back; everything still decrypts", async () => {
    const dataDir = tempDir("keyhaven-rewrap-");
    const credentials = writeCredentialsFile(dataDir);
    const local = await spawnServer({ dataDir, credentials });
    const plaintexts = ["first", "second", "third"];
    const ciphertexts: Uint8Array[] = [];
    try {
      const kms = kmsClient(local);
      for (const text of plaintexts) {
        const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
        const KeyId = KeyMetadata!.KeyId!;
        const { CiphertextBlob } = await kms.send(
          new EncryptCommand({ KeyId, Plaintext: Buffer.from(text) }),
        );
        ciphertexts.push(CiphertextBlob!);
        // A second material version: the old one must move too.
        await kms.send(new RotateKeyOnDemandCommand({ KeyId }));
      }
    } finally {
      await local.stop();
    }
    const decryptAll = async (args: string[]) => {
      const server = await spawnServer({ dataDir, credentials, args, env: hsm.env });
      try {
        for (const [i, CiphertextBlob] of ciphertexts.entries()) {
          const { Plaintext } = await kmsClient(server).send(
            new DecryptCommand({ CiphertextBlob }),
          );
          expect(Buffer.from(Plaintext!).toString()).toBe(plaintexts[i]);
        }
      } finally {
        await server.stop();
      }
    };

    const toHsm = await rewrap(dataDir, "local", "pkcs11");
    expect(toHsm.stderr).toBe("");
    expect(toHsm.code).toBe(0);
    expect(toHsm.stdout).toContain("6/6 wrapped values (6 rewrapped by this run)");
    expect(toHsm.stdout).toContain("done: the store is under pkcs11:keyhaven/keyhaven-root");
    await decryptAll(["--root-key", "pkcs11", ...pkcs11Flags()]);
    // The local key no longer opens this store, and the key service says what to do.
    const refused = await spawnServer({ dataDir, credentials }).then(
      () => new Error("started"),
      (e: Error) => e,
    );
    expect(refused.message).toMatch(
      /is not the one this store was written with \(pkcs11:keyhaven\/keyhaven-root\).*keyhaven rewrap/,
    );

    const back = await rewrap(dataDir, "pkcs11", "local");
    expect(back.code).toBe(0);
    expect(back.stdout).toContain("done: the store is under local:");
    await decryptAll([]);
  });

  it("changes nothing when the HSM cannot be reached, and says so", async () => {
    const dataDir = tempDir("keyhaven-rewrap-");
    const credentials = writeCredentialsFile(dataDir);
    const local = await spawnServer({ dataDir, credentials });
    const { KeyMetadata } = await kmsClient(local).send(new CreateKeyCommand({}));
    const { CiphertextBlob } = await kmsClient(local).send(
      new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from("kept") }),
    );
    await local.stop();
    await hsm.killServer();
    try {
      const r = await rewrap(dataDir, "local", "pkcs11");
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--to pkcs11: no token labelled 'keyhaven'/);
    } finally {
      await hsm.startServer();
    }
    const again = await spawnServer({ dataDir, credentials });
    try {
      const { Plaintext } = await kmsClient(again).send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(Plaintext!).toString()).toBe("kept");
    } finally {
      await again.stop();
    }
  });

  it("moves every Region's store (serve --region A,B), with progress per store; a second run has nothing to do", async () => {
    const dataDir = tempDir("keyhaven-rewrap-");
    const credentials = writeCredentialsFile(dataDir);
    const regions = ["--region", "us-east-1,eu-west-1"];
    const before = await spawnServer({ dataDir, credentials, args: regions, timeoutMs: 60_000 });
    const east = kmsClient(before);
    const west = kmsClient({ ...before, region: "eu-west-1" });
    let keyId: string;
    let fromEast: Uint8Array;
    let fromWest: Uint8Array;
    try {
      keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
      await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: "eu-west-1" }));
      fromEast = (
        await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("east") }))
      ).CiphertextBlob!;
      fromWest = (
        await west.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("west") }))
      ).CiphertextBlob!;
    } finally {
      await before.stop();
    }

    const moved = await rewrap(dataDir, "local", "pkcs11");
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    const lines = moved.stdout.split("\n");
    // Each store: its key material version and its peering key.
    expect(lines.filter((l) => l.startsWith("rewrapping "))).toEqual([
      expect.stringMatching(/keyhaven\.db \(store 1 of 2\): local:.* → pkcs11:/),
      expect.stringMatching(/keyhaven-eu-west-1\.db \(store 2 of 2\): local:.* → pkcs11:/),
    ]);
    expect(lines.filter((l) => l === "2/2 wrapped values (2 rewrapped by this run)")).toHaveLength(
      2,
    );
    expect(moved.stdout).toContain("done: all 2 stores are under pkcs11:keyhaven/keyhaven-root");
    const again = await rewrap(dataDir, "local", "pkcs11");
    expect(again.code).toBe(0);
    expect(
      again.stdout.match(/is already under pkcs11:keyhaven\/keyhaven-root; nothing to do/g),
    ).toHaveLength(2);

    const after = await spawnServer({
      dataDir,
      credentials,
      args: [...regions, "--root-key", "pkcs11", ...pkcs11Flags()],
      env: hsm.env,
      timeoutMs: 60_000,
    });
    try {
      for (const region of ["us-east-1", "eu-west-1"])
        for (const [blob, text] of [
          [fromEast, "east"],
          [fromWest, "west"],
        ] as const) {
          const { Plaintext } = await kmsClient({ ...after, region }).send(
            new DecryptCommand({ CiphertextBlob: blob }),
          );
          expect(Buffer.from(Plaintext!).toString()).toBe(text);
        }
      // The peering keys moved too: replication still works under the new root key.
      await kmsClient(after).send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      const rotated = (
        await kmsClient(after).send(
          new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("rotated") }),
        )
      ).CiphertextBlob!;
      const { Plaintext } = await kmsClient({ ...after, region: "eu-west-1" }).send(
        new DecryptCommand({ CiphertextBlob: rotated }),
      );
      expect(Buffer.from(Plaintext!).toString()).toBe("rotated");
    } finally {
      await after.stop();
    }
  }, 180_000);
});
