/**
 * `keyhaven agent` against the real key service on loopback: files with the right
 * contents and modes, a data key that stays the same across restarts, retries while
 * the key service starts, and AWS's error text with a non-zero exit on permanent errors.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  PutKeyPolicyCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgentOnce, type AgentDependencies, type AgentPlan } from "../src/agent/agent.js";
import { runAgentCommand } from "../src/cmd/agent.js";
import { directoryDataKeyStore } from "../src/agent/dataKeyStore.js";
import type { AgentConfig } from "../src/config/config.js";
import { kmsClient, startInProcess, tempDir, type InProcessServer } from "./support/server.js";
import { driveTimers, ManualClock } from "./support/manualClock.js";

let server: InProcessServer;
let kms: KMSClient;
let keyArn: string;
const SECRET = "s3cr3t 'quoted' $HOME\nsecond line";
let ciphertext: string;

beforeAll(async () => {
  server = await startInProcess();
  kms = kmsClient(server);
  const key = await kms.send(new CreateKeyCommand({ Description: "agent test" }));
  keyArn = key.KeyMetadata!.Arn!;
  await kms.send(new CreateAliasCommand({ AliasName: "alias/shop/web", TargetKeyId: keyArn }));
  const enc = await kms.send(
    new EncryptCommand({ KeyId: "alias/shop/web", Plaintext: Buffer.from(SECRET) }),
  );
  ciphertext = Buffer.from(enc.CiphertextBlob!).toString("base64");
});

afterAll(async () => {
  kms?.destroy();
  await server?.stop();
});

function config(dir: string, storeDir: string, plan: AgentPlan | string): AgentConfig {
  return {
    command: "agent",
    dir,
    plan: typeof plan === "string" ? plan : JSON.stringify(plan),
    dataKeyStore: { kind: "directory", path: storeDir },
    refreshIntervalSeconds: 0,
    timeoutSeconds: 5,
  };
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe("keyhaven agent against the key service", () => {
  it("writes the data key (plaintext and ciphertext) and decrypted env values, mode 0400", async () => {
    const dir = tempDir("keyhaven-agent-");
    const store = tempDir("keyhaven-agent-store-");
    const lines: string[] = [];
    const plan: AgentPlan = {
      dataKey: { keyId: "alias/shop/web", secretName: "keyhaven-dk-web-1" },
      env: [{ container: "app", name: "DB_PASSWORD", ciphertext }],
    };
    const code = await runAgentCommand(config(dir, store, plan), {
      kms,
      log: (l) => lines.push(l),
    });
    expect(code).toBe(0);

    const plaintext = readFileSync(join(dir, "data-key"));
    const blob = readFileSync(join(dir, "data-key.ciphertext"));
    expect(plaintext).toHaveLength(32);
    const check = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
    expect(Buffer.from(check.Plaintext!)).toEqual(plaintext);
    expect(check.KeyId).toBe(keyArn);

    expect(readFileSync(join(dir, "env", "app", "DB_PASSWORD"), "utf8")).toBe(SECRET);
    expect(readFileSync(join(dir, "env", "app.env"), "utf8")).toBe(
      `DB_PASSWORD='s3cr3t '\\''quoted'\\'' $HOME\nsecond line'\n`,
    );
    for (const f of [
      "data-key",
      "data-key.ciphertext",
      "env/app/DB_PASSWORD",
      "env/app.env",
      ".ready",
    ])
      expect(mode(join(dir, f)), f).toBe(0o400);
    expect(mode(join(dir, "env"))).toBe(0o700);
    // Progress lines name files and keys, never their contents.
    expect(lines.join("\n")).not.toContain("s3cr3t");
    expect(lines.join("\n")).not.toContain(plaintext.toString("base64"));
  });

  it("the env file, sourced by sh as the wrapper does, gives the process the exact value", async () => {
    const dir = tempDir("keyhaven-agent-");
    await runAgentCommand(
      config(dir, tempDir(), { env: [{ container: "app", name: "DB_PASSWORD", ciphertext }] }),
      {
        kms,
        log: () => {},
      },
    );
    const { execFileSync } = await import("node:child_process");
    const { WRAPPER_SCRIPT, WRAPPER_NAME } = await import("../src/webhook/podMutation.js");
    const out = execFileSync("/bin/sh", [
      "-c",
      WRAPPER_SCRIPT,
      WRAPPER_NAME,
      join(dir, "env", "app.env"),
      process.execPath,
      "-e",
      "process.stdout.write(process.env.DB_PASSWORD)",
    ]);
    expect(out.toString("utf8")).toBe(SECRET);
  });

  it("keeps the data key stable across restarts and between pods starting together", async () => {
    const store = tempDir("keyhaven-agent-store-");
    const plan: AgentPlan = {
      dataKey: { keyId: "alias/shop/web", secretName: "keyhaven-dk-web-2" },
      env: [],
    };
    const dirs = [tempDir(), tempDir(), tempDir()];
    // Two pods of the workload race on first start…
    const codes = await Promise.all(
      dirs.slice(0, 2).map((d) => runAgentCommand(config(d, store, plan), { kms, log: () => {} })),
    );
    expect(codes).toEqual([0, 0]);
    // …and a restarted pod later finds the same key.
    expect(await runAgentCommand(config(dirs[2]!, store, plan), { kms, log: () => {} })).toBe(0);
    const keys = dirs.map((d) => readFileSync(join(d, "data-key")).toString("hex"));
    expect(new Set(keys).size).toBe(1);
    // The store holds only the ciphertext.
    const stored = JSON.parse(
      readFileSync(join(store, "keyhaven-dk-web-2.json"), "utf8"),
    ) as Record<string, string>;
    expect(Object.keys(stored).sort()).toEqual(["ciphertext", "keyId"]);
    expect(stored.keyId).toBe(keyArn);
    expect(JSON.stringify(stored)).not.toContain(Buffer.from(keys[0]!, "hex").toString("base64"));
  });

  it("an unknown key ends the agent at once with AWS's error text and exit code 1", async () => {
    const lines: string[] = [];
    const plan: AgentPlan = {
      dataKey: { keyId: "alias/does-not-exist", secretName: "keyhaven-dk-x" },
      env: [],
    };
    const code = await runAgentCommand(config(tempDir(), tempDir(), plan), {
      kms,
      log: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe(
      "GenerateDataKey with key alias/does-not-exist failed: NotFoundException: Alias arn:aws:kms:us-east-1:000000000000:alias/does-not-exist is not found.",
    );
  });

  it("a denied key ends the agent with AccessDeniedException and exit code 1", async () => {
    const key = await kms.send(new CreateKeyCommand({ Description: "denied" }));
    const arn = key.KeyMetadata!.Arn!;
    await kms.send(
      new PutKeyPolicyCommand({
        KeyId: arn,
        PolicyName: "default",
        BypassPolicyLockoutSafetyCheck: true,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "admin",
              Effect: "Allow",
              Principal: { AWS: "arn:aws:iam::000000000000:root" },
              Action: "kms:*",
              Resource: "*",
            },
            {
              Sid: "no-data-keys",
              Effect: "Deny",
              Principal: { AWS: "*" },
              Action: "kms:GenerateDataKey",
              Resource: "*",
            },
          ],
        }),
      }),
    );
    const lines: string[] = [];
    const plan: AgentPlan = { dataKey: { keyId: arn, secretName: "keyhaven-dk-denied" }, env: [] };
    const code = await runAgentCommand(config(tempDir(), tempDir(), plan), {
      kms,
      log: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^GenerateDataKey with key ${arn} failed: AccessDeniedException: .*kms:GenerateDataKey`,
      ),
    );
  });

  it("a tampered env ciphertext is a permanent error naming the variable", async () => {
    const bad = Buffer.from(ciphertext, "base64");
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    const lines: string[] = [];
    const code = await runAgentCommand(
      config(tempDir(), tempDir(), {
        env: [{ container: "app", name: "DB_PASSWORD", ciphertext: bad.toString("base64") }],
      }),
      { kms, log: (l) => lines.push(l) },
    );
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(
      /^Decrypt of env DB_PASSWORD \(container app\) failed: InvalidCiphertextException/,
    );
  });

  it("rejects a malformed plan with exit code 1", async () => {
    const lines: string[] = [];
    expect(
      await runAgentCommand(config(tempDir(), tempDir(), "{nope"), {
        kms,
        log: (l) => lines.push(l),
      }),
    ).toBe(1);
    expect(lines).toEqual(["KEYHAVEN_AGENT_PLAN is not JSON"]);
  });
});

describe("refresh sidecar", () => {
  it("rewrites the files every interval, keeps them when a refresh fails, stops when told", async () => {
    const dir = tempDir("keyhaven-agent-");
    const lines: string[] = [];
    const waits: number[] = [];
    let calls = 0;
    const failing = { value: false };
    const clock = new ManualClock();
    const stop = new AbortController();
    const running = runAgentCommand(
      {
        ...config(dir, tempDir(), { env: [{ container: "app", name: "DB_PASSWORD", ciphertext }] }),
        refreshIntervalSeconds: 60,
        timeoutSeconds: 0,
      },
      {
        kms: {
          send: ((command: never) => {
            calls++;
            return failing.value ? Promise.reject(new Error("down")) : kms.send(command);
          }) as KMSClient["send"],
        },
        log: (l) => lines.push(l),
        clock,
        signal: stop.signal,
      },
    );
    const code = await driveTimers(clock, running, (ms) => {
      waits.push(ms);
      if (waits.length === 2) failing.value = true; // the third pass fails
      if (waits.length === 3) stop.abort(); // SIGTERM
    });
    expect(code).toBe(0);
    expect(waits).toEqual([60_000, 60_000, 60_000]);
    expect(calls).toBe(3); // first pass, one refresh, one failed refresh
    expect(
      lines.filter((l) => l.startsWith("refresh failed, keeping the current files")),
    ).toHaveLength(1);
    expect(readFileSync(join(dir, "env", "app", "DB_PASSWORD"), "utf8")).toBe(SECRET);
  });
});

describe("retries while the key service starts", () => {
  it("backs off on connection errors and succeeds once the key service is up", async () => {
    // A key service that is down at first: same data folder, same port, started later.
    const first = await startInProcess();
    const port = new URL(first.url).port;
    const client = kmsClient(first);
    const key = await client.send(new CreateKeyCommand({}));
    await first.stop();
    let later: InProcessServer | undefined;
    const delays: number[] = [];
    const clock = new ManualClock(0);
    let laterClient: KMSClient | undefined;
    const deps: AgentDependencies = {
      // The restarted service writes a fresh test credential; use it once it is up.
      kms: {
        send: ((command: never) => (laterClient ?? client).send(command)) as KMSClient["send"],
      },
      store: directoryDataKeyStore(tempDir()),
      dir: tempDir(),
      log: () => {},
      clock,
      retry: { initialDelayMs: 100, maxDelayMs: 1000, deadlineMs: 60_000 },
    };
    try {
      const result = await driveTimers(
        clock,
        runAgentOnce(
          { dataKey: { keyId: key.KeyMetadata!.KeyId!, secretName: "keyhaven-dk-retry" }, env: [] },
          deps,
        ),
        async (ms) => {
          delays.push(ms);
          if (delays.length === 3) {
            later = await startInProcess({
              dataDir: first.dataDir,
              args: ["--listen", `127.0.0.1:${port}`],
            });
            laterClient = kmsClient(later);
          }
        },
      );
      expect(delays).toEqual([100, 200, 400]);
      expect(result.dataKey).toEqual({ keyId: key.KeyMetadata!.KeyId!, reused: false });
    } finally {
      client.destroy();
      laterClient?.destroy();
      await later?.stop();
    }
  });

  it("gives up after the deadline with exit code 3 and says what kept failing", async () => {
    const client = kmsClient({ ...server, url: "http://127.0.0.1:9" });
    const lines: string[] = [];
    const clock = new ManualClock(0);
    const deps: AgentDependencies = {
      kms: client,
      store: directoryDataKeyStore(tempDir()),
      dir: tempDir(),
      log: (l) => lines.push(l),
      clock,
      retry: { initialDelayMs: 500, maxDelayMs: 15_000, deadlineMs: 60_000 },
    };
    await expect(
      driveTimers(
        clock,
        runAgentOnce({ dataKey: { keyId: "alias/x", secretName: "keyhaven-dk-y" }, env: [] }, deps),
      ),
    ).rejects.toMatchObject({
      permanent: false,
      message: expect.stringMatching(
        /^GenerateDataKey with key alias\/x still failing after \d+ attempts: .*ECONNREFUSED/,
      ),
    });
    expect(clock.now().getTime()).toBeLessThanOrEqual(60_000);
    client.destroy();
  });
});
