/**
 * `keyhaven controller` as a real program: flags and AWS_* environment, the real
 * client-node against the loopback fake API server, the real key service; a KmsKey
 * becomes Ready, /metrics and /readyz answer, SIGTERM stops it cleanly (exit 0) and
 * releases the Lease.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isReady } from "../src/api/v1alpha1/conditions.js";
import type { KmsKey } from "../src/api/v1alpha1/types.js";
import { eventually } from "./kube/drive.js";
import { kmsKey } from "./kube/fixtures.js";
import { kubeconfigFor, startHttpApiServer, type HttpApiServer } from "./kube/httpApiServer.js";
import { MAIN_JS, startInProcess, tempDir, type InProcessServer } from "./support/server.js";

let fake: HttpApiServer;
let service: InProcessServer;
beforeEach(async () => {
  fake = await startHttpApiServer();
  service = await startInProcess();
});
afterEach(async () => {
  await fake.stop();
  await service.stop();
});

it("runs, reconciles, serves metrics and health, and stops on SIGTERM", async () => {
  const kubeconfig = join(tempDir("keyhaven-ctl-"), "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigFor(fake.url));
  fake.api.create("kmskeys", "apps", kmsKey("payments"));
  const child = spawn(
    process.execPath,
    [
      MAIN_JS,
      "controller",
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      "ops",
      "--metrics-listen",
      "127.0.0.1:0",
      "--disable-webhook",
      "--identity",
      "ctl-0",
    ],
    {
      env: {
        PATH: process.env["PATH"],
        AWS_ENDPOINT_URL_KMS: service.url,
        AWS_REGION: service.region,
        AWS_ACCESS_KEY_ID: service.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: service.credentials.secretAccessKey,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const metricsUrl = new Promise<string>((resolve) =>
    createInterface(child.stdout).on("line", (line) => {
      output += `${line}\n`;
      const m = /"metrics":"(http:[^"]+)\/metrics"/.exec(line);
      if (m) resolve(m[1]!);
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  try {
    const base = await metricsUrl;
    await eventually(
      () =>
        isReady(
          (fake.api.get("kmskeys", "apps", "payments") as unknown as KmsKey).status?.conditions,
        ),
      "the KmsKey to be Ready",
    );
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(
      /keyhaven_controller_reconcile_total\{controller="kmskey",result="requeue_after"\} 1/,
    );
    expect(metrics).toMatch(/keyhaven_controller_is_leader 1/);
    expect(metrics).toMatch(/process_cpu_user_seconds_total/);
    expect(
      (
        fake.api.get("leases", "ops", "keyhaven-controller") as unknown as {
          spec: { holderIdentity: string };
        }
      ).spec.holderIdentity,
    ).toBe("ctl-0");
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(
      (
        fake.api.get("leases", "ops", "keyhaven-controller") as unknown as {
          spec: { holderIdentity: string };
        }
      ).spec.holderIdentity,
    ).toBe("");
    expect(output).not.toContain(service.credentials.secretAccessKey);
  } finally {
    child.kill("SIGKILL");
  }
});
