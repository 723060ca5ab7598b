/**
 * `keyhaven serve --root-key pkcs11` as the chart runs it: the real program loading
 * p11-kit-client.so, a real `p11-kit server` over SoftHSM2 as the sidecar, and the AWS SDK
 * as the client. Start-up errors, readiness, and the sidecar dying and coming back.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { kmsClient, spawnServer, tempDir, type SpawnedServer } from "./support/server.js";
import { P11_KIT_CLIENT, sidecarMechanism, startSoftHsm, type SoftHsm } from "./support/softhsm.js";

let hsm: SoftHsm;
let pinFile: string;

beforeAll(async () => {
  hsm = await startSoftHsm();
  pinFile = join(tempDir("keyhaven-pin-"), "pin");
  writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
});
afterAll(() => hsm?.stop());

const pkcs11Args = (pin = pinFile) => [
  "--root-key",
  "pkcs11",
  "--pkcs11-module",
  P11_KIT_CLIENT,
  "--pkcs11-token-label",
  hsm.tokenLabel,
  "--pkcs11-key-label",
  "keyhaven-root",
  "--pkcs11-pin-file",
  pin,
];

async function readyz(server: SpawnedServer): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server.url}/readyz`);
  return { status: res.status, body: await res.text() };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function roundTrip(server: SpawnedServer, text: string): Promise<Uint8Array> {
  const kms = kmsClient(server);
  const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
  const { CiphertextBlob } = await kms.send(
    new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from(text) }),
  );
  const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob }));
  expect(Buffer.from(Plaintext!).toString()).toBe(text);
  return CiphertextBlob!;
}

describe("keyhaven serve --root-key pkcs11 through the p11-kit server sidecar", () => {
  it("serves the AWS SDK with the root key in the HSM, and a restart decrypts what it wrote", async () => {
    const server = await spawnServer({ args: pkcs11Args(), env: hsm.env });
    let ciphertext: Uint8Array;
    try {
      expect(server.output()).toMatch(/"msg":"root key HSM connected"/);
      expect(server.output()).toContain(`"mechanism":"${sidecarMechanism(hsm)}"`);
      expect(await readyz(server)).toEqual({ status: 200, body: "ready" });
      ciphertext = await roundTrip(server, "wrapped by the HSM");
    } finally {
      await server.stop();
    }
    expect(server.output() + server.stderr()).not.toContain(hsm.pin);
    // The PIN from KEYHAVEN_PKCS11_PIN instead of a file; same store, same token key.
    const again = await spawnServer({
      dataDir: server.dataDir,
      args: pkcs11Args().slice(0, -2),
      env: { ...hsm.env, KEYHAVEN_PKCS11_PIN: hsm.pin },
    });
    try {
      const { Plaintext } = await kmsClient(again).send(
        new DecryptCommand({ CiphertextBlob: ciphertext }),
      );
      expect(Buffer.from(Plaintext!).toString()).toBe("wrapped by the HSM");
    } finally {
      await again.stop();
    }
  });

  it("stops at start with a clear error for a wrong PIN, without printing it", async () => {
    const wrongPin = join(tempDir("keyhaven-pin-"), "pin");
    writeFileSync(wrongPin, "not-the-pin\n", { mode: 0o600 });
    const err = await spawnServer({ args: pkcs11Args(wrongPin), env: hsm.env }).then(
      () => new Error("the server started"),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/exited with 2 before listening/);
    expect(err.message).toContain(
      "token 'keyhaven' refused the PIN (CKR_PIN_INCORRECT); check --pkcs11-pin-file or KEYHAVEN_PKCS11_PIN",
    );
    expect(err.message).not.toContain("not-the-pin");
  });

  it("starts without the sidecar, is not ready and fails requests fast, then serves once the sidecar is up", async () => {
    await hsm.killServer();
    const server = await spawnServer({ args: pkcs11Args(), env: hsm.env });
    try {
      const r = await readyz(server);
      expect(r.status).toBe(503);
      expect(r.body).toMatch(/^root key unavailable: no token labelled 'keyhaven'/);
      const started = Date.now();
      const f = await failure(kmsClient(server).send(new CreateKeyCommand({})));
      expect(f).toMatchObject({ name: "KMSInternalException", status: 500 });
      expect(Date.now() - started).toBeLessThan(2000);
      await hsm.startServer();
      await until(async () => (await readyz(server)).status === 200, "readiness");
      await roundTrip(server, "after the sidecar came up");
    } finally {
      await server.stop();
      if (hsm.serverPid() === undefined) await hsm.startServer();
    }
  });

  it("survives the sidecar being killed while serving: requests fail cleanly, then succeed, nothing lost", async () => {
    const server = await spawnServer({ args: pkcs11Args(), env: hsm.env });
    try {
      const kms = kmsClient(server);
      const before = await roundTrip(server, "before the crash");
      await hsm.killServer();
      // New keys need the HSM (their material is wrapped by it): each fails fast, none hangs.
      await until(async () => {
        const started = Date.now();
        const outcome = await kms.send(new CreateKeyCommand({})).then(
          () => "ok",
          (e: Error) => e.name,
        );
        expect(Date.now() - started).toBeLessThan(6000);
        return outcome === "KMSInternalException";
      }, "a failing request");
      expect((await readyz(server)).status).toBe(503);
      await hsm.startServer();
      await until(async () => (await readyz(server)).status === 200, "readiness");
      await roundTrip(server, "after the restart");
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: before }));
      expect(Buffer.from(Plaintext!).toString()).toBe("before the crash");
    } finally {
      await server.stop();
    }
  });
});
