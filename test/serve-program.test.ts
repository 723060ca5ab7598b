/**
 * The `keyhaven serve` program itself: the first-start path (generated admin credential,
 * file modes), HTTPS with --tls-cert/--tls-key, and flag errors.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  ListKeysCommand,
} from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import {
  MAIN_JS,
  kmsClient,
  selfSignedCertificate,
  spawnServer,
  tempDir,
} from "./support/server.js";

const mode = (path: string) => statSync(path).mode & 0o777;

describe("first start without --credentials", () => {
  it("creates an admin credential (0600), a root key (0600) and prints the export lines", async () => {
    const dataDir = join(tempDir(), "data");
    const server = await spawnServer({ dataDir, firstStart: true });
    try {
      const out = server.output();
      expect(out).toMatch(/^ {2}export AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16}$/m);
      expect(out).toMatch(/^ {2}export AWS_SECRET_ACCESS_KEY=\S{40}$/m);
      expect(out).toContain("export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1");
      // The endpoint line names the port actually bound, not the requested port 0.
      expect(out).toContain(`export AWS_ENDPOINT_URL_KMS=${server.url}\n`);
      expect(mode(join(dataDir, "credentials.yaml"))).toBe(0o600);
      expect(mode(join(dataDir, "root.key"))).toBe(0o600);
      expect(mode(dataDir)).toBe(0o700);
      expect(statSync(join(dataDir, "root.key")).size).toBe(32);
      const file = readFileSync(join(dataDir, "credentials.yaml"), "utf8");
      expect(file).toContain(server.credentials.accessKeyId);

      // The printed credential works.
      const kms = kmsClient(server);
      const key = await kms.send(new CreateKeyCommand({}));
      expect(key.KeyMetadata?.KeyState).toBe("Enabled");
      kms.destroy();
    } finally {
      expect(await server.stop()).toBe(0);
    }

    // A second start reuses the credential and prints no secret.
    const again = await spawnServer({ dataDir, firstStart: true });
    try {
      expect(again.output()).not.toContain("export AWS_SECRET_ACCESS_KEY");
      expect(again.output()).not.toContain(server.credentials.secretAccessKey);
      const kms = kmsClient({ ...again, credentials: server.credentials });
      expect((await kms.send(new ListKeysCommand({}))).Keys).toHaveLength(1);
      kms.destroy();
    } finally {
      expect(await again.stop()).toBe(0);
    }
  });
});

describe("TLS", () => {
  it("serves HTTPS with a self-signed certificate the SDK is told to trust", async () => {
    const dir = tempDir("keyhaven-tls-");
    const { cert, key } = selfSignedCertificate(dir);
    const server = await spawnServer({ args: ["--tls-cert", cert, "--tls-key", key] });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const httpsAgent = new Agent({ ca: readFileSync(cert), keepAlive: true });
      const kms = kmsClient(server, { httpsAgent });
      const created = await kms.send(new CreateKeyCommand({}));
      const enc = await kms.send(
        new EncryptCommand({ KeyId: created.KeyMetadata!.KeyId, Plaintext: Buffer.from("tls") }),
      );
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe("tls");
      kms.destroy();
      httpsAgent.destroy();

      // A client that does not trust the certificate gets no answer at all.
      const untrusting = kmsClient(server);
      const err = await untrusting.send(new ListKeysCommand({})).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(err?.code ?? err?.message).toMatch(/SELF_SIGNED|self.signed|certificate/i);
      untrusting.destroy();
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

describe("flag errors", () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [MAIN_JS, ...args], {
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "" },
    });

  it("exits 2 with a message naming the flag to fix", () => {
    const listen = run("serve", "--listen", "nowhere");
    expect(listen.status).toBe(2);
    expect(listen.stderr).toContain("--listen: expected HOST:PORT");
    const tls = run("serve", "--tls-cert", "/tmp/x.pem", "--data", tempDir());
    expect(tls.status).toBe(2);
    expect(tls.stderr).toContain("--tls-cert and --tls-key go together");
    const unknown = run("serve", "--frobnicate", "1");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("--frobnicate");
    const command = run("launch");
    expect(command.status).toBe(2);
    expect(command.stderr).toContain("unknown command 'launch'");
  });

  it("reports unreadable or invalid TLS files and a busy port as startup errors (exit 2, no stack)", async () => {
    const dataDir = tempDir();
    const missing = run(
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      join(dataDir, "none.pem"),
      "--tls-key",
      join(dataDir, "none.key"),
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^keyhaven: --tls-cert \S+none\.pem: ENOENT/);
    expect(missing.stderr).not.toContain("    at ");

    const junk = join(dataDir, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    const invalid = run(
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      junk,
      "--tls-key",
      junk,
    );
    expect(invalid.status).toBe(2);
    expect(invalid.stderr).toContain("give a PEM certificate chain and its PEM private key");
    expect(invalid.stderr).not.toContain("    at ");

    const first = await spawnServer();
    try {
      const port = new URL(first.url).port;
      const busy = run("serve", "--data", tempDir(), "--listen", `127.0.0.1:${port}`);
      expect(busy.status).toBe(2);
      expect(busy.stderr).toContain(`keyhaven: cannot listen on 127.0.0.1:${port}:`);
      expect(busy.stderr).toContain("EADDRINUSE");
      expect(busy.stderr).not.toContain("    at ");
    } finally {
      await first.stop();
    }
  });

  it("refuses a root key file others can read, saying how to fix it (exit 2, no stack)", () => {
    const dataDir = tempDir();
    const rootKey = join(dataDir, "root.key");
    writeFileSync(rootKey, randomBytes(32), { mode: 0o644 });
    chmodSync(rootKey, 0o644);
    const loose = run("serve", "--data", dataDir, "--listen", "127.0.0.1:0");
    expect(loose.status).toBe(2);
    expect(loose.stderr).toBe(
      `keyhaven: root key file ${rootKey} is readable by group or others; run: chmod 600 ${rootKey}\n`,
    );
  });
});
