/**
 * `keyhaven controller` start-up failures end as `keyhaven serve`'s do: one line
 * `keyhaven: ...` on stderr saying what to fix, exit status 2, no stack trace. The
 * API server is the real one (test/support/kubeUp.ts), first without the CRDs.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createCa,
  createServingCertificate,
  DEFAULT_CERTIFICATE_POLICY,
} from "../src/webhook/certificates.js";
import { applyCrds, kmsEnvironment } from "./kube/realCluster.js";
import { startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { MAIN_JS, REPO_ROOT, tempDir } from "./support/server.js";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await startControlPlane();
}, 120_000);
afterAll(async () => {
  await plane?.stop();
});

const env = kmsEnvironment(
  { url: "http://127.0.0.1:9", region: "us-east-1" },
  { accessKeyId: "AKIASTARTUP", secretAccessKey: "startup-secret" },
);

/** Runs `keyhaven ROLE ARGS` to its end: exit code and stderr. */
function runProgram(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stderr }));
  });
}

const controller = (...args: string[]) =>
  runProgram(["controller", "--namespace", "keyhaven-system", "--identity", "ctl", ...args]);

/**
 * The AWS SDK's own warning on Node 20 (printed by Node once the KMS client exists, on
 * every start, not part of the error): the platform's Node version, not this start-up.
 */
const SDK_NODE_WARNING =
  /^\(node:\d+\) Warning: NodeVersionSupportWarning:[\s\S]*?\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n/;

/** The clean ending: one `keyhaven: ...` line matching `pattern`, exit 2. */
function expectCleanFailure(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  const stderr = r.stderr.replace(SDK_NODE_WARNING, "");
  expect(r.code, stderr).toBe(2);
  expect(stderr).toMatch(/^keyhaven: [^\n]+\n$/);
  expect(stderr).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

function busyPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      resolve({ server, port: (server.address() as { port: number }).port });
    });
  });
}

it("an unreadable or broken kubeconfig, and an unreachable API server", async () => {
  expectCleanFailure(
    await controller("--kubeconfig", "/nonexistent/kubeconfig", "--disable-webhook"),
    /^keyhaven: --kubeconfig \/nonexistent\/kubeconfig: .*ENOENT.*--kubeconfig/,
  );
  const broken = join(tempDir("keyhaven-kc-"), "kubeconfig");
  writeFileSync(broken, "clusters: [unclosed\n");
  expectCleanFailure(
    await controller("--kubeconfig", broken, "--disable-webhook"),
    new RegExp(`^keyhaven: --kubeconfig ${broken}: `),
  );
  const closed = await busyPort();
  closed.server.close();
  const unreachable = join(tempDir("keyhaven-kc-"), "kubeconfig");
  writeFileSync(
    unreachable,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: c, cluster: {server: "https://127.0.0.1:${closed.port}", certificate-authority: "${plane.caFile}"}}]`,
      "users: [{name: u, user: {token: t}}]",
      "contexts: [{name: c, context: {cluster: c, user: u}}]",
      "current-context: c",
      "",
    ].join("\n"),
  );
  expectCleanFailure(
    await controller("--kubeconfig", unreachable, "--disable-webhook"),
    new RegExp(
      `^keyhaven: cannot reach the Kubernetes API server at https://127.0.0.1:${closed.port}: .*check --kubeconfig`,
    ),
  );
});

it("CRDs not installed, then a busy metrics port and a busy webhook port, as serve's busy port", async () => {
  expectCleanFailure(
    await controller("--kubeconfig", plane.kubeconfig, "--disable-webhook"),
    /does not serve kmskeys\.keyhaven\.dev\/v1alpha1: install the CRDs first \(kubectl apply -f crds\//,
  );
  // An upgrade whose chart brought a new kind: Helm does not add its CRD, so the controller
  // names it instead of waiting for ever on its informer.
  const [older, newer] = [tempDir("keyhaven-crds-"), tempDir("keyhaven-crds-")];
  for (const file of readdirSync(join(REPO_ROOT, "crds")).filter((f) => f.endsWith(".yaml")))
    cpSync(join(REPO_ROOT, "crds", file), join(file.includes("kmssecrets") ? newer : older, file));
  await applyCrds(plane, older);
  expectCleanFailure(
    await controller("--kubeconfig", plane.kubeconfig, "--disable-webhook"),
    /does not serve kmssecrets\.keyhaven\.dev\/v1alpha1: install the CRDs first .*apply crds\/ after upgrading/,
  );
  await applyCrds(plane, newer);
  const busy = await busyPort();
  try {
    expectCleanFailure(
      await controller(
        "--kubeconfig",
        plane.kubeconfig,
        "--disable-webhook",
        "--metrics-listen",
        `127.0.0.1:${busy.port}`,
      ),
      new RegExp(
        `^keyhaven: --metrics-listen: cannot listen on 127.0.0.1:${busy.port}: .*EADDRINUSE`,
      ),
    );
    const certDir = tempDir("keyhaven-webhook-cert-");
    mkdirSync(certDir, { recursive: true });
    const ca = createCa(new Date(), DEFAULT_CERTIFICATE_POLICY, "test-ca");
    const leaf = createServingCertificate(new Date(), DEFAULT_CERTIFICATE_POLICY, ca, [
      "localhost",
    ]);
    writeFileSync(join(certDir, "tls.crt"), leaf.cert);
    writeFileSync(join(certDir, "tls.key"), leaf.key);
    expectCleanFailure(
      await controller(
        "--kubeconfig",
        plane.kubeconfig,
        "--metrics-listen",
        "127.0.0.1:0",
        "--webhook-listen",
        `127.0.0.1:${busy.port}`,
        "--webhook-cert-dir",
        certDir,
      ),
      new RegExp(
        `^keyhaven: --webhook-listen: cannot start the webhook on 127.0.0.1:${busy.port}: .*EADDRINUSE`,
      ),
    );
    // The same ending as the key service's.
    expectCleanFailure(
      await runProgram([
        "serve",
        "--data",
        tempDir("keyhaven-serve-"),
        "--listen",
        `127.0.0.1:${busy.port}`,
      ]),
      new RegExp(`^keyhaven: cannot listen on 127.0.0.1:${busy.port}: .*EADDRINUSE`),
    );
  } finally {
    busy.server.close();
  }
});
