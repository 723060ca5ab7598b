/**
 * The chart's HSM wiring run for real: examples/hsm/values-softhsm.yaml rendered by Helm,
 * then its three command lines run as processes, each exactly as rendered (command, args,
 * env; Secret references resolved from a stand-in Secret):
 *   1. the `softhsm-init-token` init container's script (twice: a restarted pod finds its
 *      token and keeps it);
 *   2. the `hsm` sidecar, `p11-kit server` over SoftHSM2, and its startup probe;
 *   3. the key service, `keyhaven serve` loading p11-kit-client.so with the rendered
 *      P11_KIT_SERVER_ADDRESS and KEYHAVEN_PKCS11_PIN.
 * What a pod's file system would provide is mapped onto a temp folder: the socket's
 * emptyDir, the token volume (and SoftHSM2's config, which the sidecar image carries at
 * /etc/softhsm/softhsm2.conf), the data volume, the credentials Secret, the image's
 * p11-kit-client.so (Debian's, on this machine) and the listen address (a free port).
 * Then the AWS SDK against it, and the sidecar killed (its process group, as the kubelet
 * does) and started again with the same command line.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podSpec, render, ROOT } from "./chart/support.js";
import { parse } from "yaml";
import {
  kmsClient,
  spawnServer,
  tempDir,
  writeCredentialsFile,
  type SpawnedServer,
} from "./support/server.js";
import { P11_KIT_CLIENT, SOFTHSM_MODULE } from "./support/softhsm.js";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  startupProbe?: { exec: { command: string[] } };
}

const root = tempDir("keyhaven-chart-hsm-");
const SECRET = { pin: "2f1c9d07a4e6b3c8", "so-pin": "9a7e5c3b1d0f2468" };
const credentials = writeCredentialsFile(root);
const dataDir = join(root, "var/lib/keyhaven/store");

/** Pod paths to this machine's. */
const PATHS: [string, string][] = [
  ["/var/run/keyhaven-hsm", join(root, "var/run/keyhaven-hsm")],
  ["/var/lib/keyhaven", join(root, "var/lib/keyhaven")],
  ["/var/lib/softhsm/tokens", join(root, "var/lib/softhsm/tokens")],
  ["/etc/keyhaven/credentials/credentials.yaml", credentials.path],
  ["/usr/lib/keyhaven/pkcs11/p11-kit-client.so", P11_KIT_CLIENT],
  ["/usr/lib/softhsm/libsofthsm2.so", SOFTHSM_MODULE],
  ["--listen=0.0.0.0:8080", "--listen=127.0.0.1:0"],
];
const map = (s: string) => PATHS.reduce((acc, [from, to]) => acc.split(from).join(to), s);

/** SoftHSM2's configuration as the sidecar image has it, with the token volume mapped. */
const softhsmConf = join(root, "softhsm2.conf");
const IMAGE_ENV = { SOFTHSM2_CONF: softhsmConf };

function resolveEnv(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      expect(ref.name).toBe("keyhaven-hsm-pin");
      env[e.name] = SECRET[ref.key as keyof typeof SECRET];
    } else env[e.name] = map(e.value!);
  }
  return env;
}

let init: Container;
let sidecar: Container;
let keyService: Container;
let sidecarProcess: ChildProcess | undefined;

function runInit(): string {
  const [command, ...args] = [...init.command!, ...(init.args ?? [])].map(map);
  return execFileSync(command!, args, {
    env: { PATH: process.env["PATH"]!, ...IMAGE_ENV, ...resolveEnv(init) },
    encoding: "utf8",
  });
}

async function startSidecar(): Promise<void> {
  const [command, ...args] = [...sidecar.command!, ...(sidecar.args ?? [])].map(map);
  const child = spawn(command!, args, {
    env: { PATH: process.env["PATH"]!, ...IMAGE_ENV, ...resolveEnv(sidecar) },
    stdio: "ignore",
    detached: true,
  });
  sidecarProcess = child;
  // The kubelet starts the key service once the sidecar's startup probe passes.
  const [probe, ...probeArgs] = sidecar.startupProbe!.exec.command.map(map);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}`);
    try {
      execFileSync(probe!, probeArgs);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error("the sidecar's startup probe never passed");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function killSidecar(): Promise<void> {
  const child = sidecarProcess;
  sidecarProcess = undefined;
  if (!child?.pid || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  process.kill(-child.pid, "SIGKILL");
  await gone;
}

async function readyz(server: SpawnedServer): Promise<number> {
  return (await fetch(`${server.url}/readyz`)).status;
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  const values = parse(readFileSync(join(ROOT, "examples/hsm/values-softhsm.yaml"), "utf8")) as {
    [k: string]: unknown;
  };
  const deployment = render({ values }).find(
    (o) => o.kind === "Deployment" && o.metadata.name === "keyhaven",
  )!;
  const spec = podSpec(deployment) as { initContainers: Container[]; containers: Container[] };
  init = spec.initContainers.find((c) => c.name === "softhsm-init-token")!;
  sidecar = spec.initContainers.find((c) => c.name === "hsm")!;
  keyService = spec.containers.find((c) => c.name === "key-service")!;
  // The pod's volumes: empty folders.
  for (const dir of ["var/run/keyhaven-hsm", "var/lib/keyhaven", "var/lib/softhsm/tokens"])
    mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(
    softhsmConf,
    `directories.tokendir = ${join(root, "var/lib/softhsm/tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
}, 120_000);

afterAll(() => killSidecar());

describe("examples/hsm/values-softhsm.yaml's processes, run with the chart's command lines", () => {
  it("initialises the token once, the sidecar exports it, and the key service serves with the root key in it; killing the sidecar fails requests cleanly and its restart restores service", async () => {
    expect(runInit()).toBe("token keyhaven initialised\n");
    expect(runInit()).toBe("token keyhaven is there\n");

    await startSidecar();
    expect(existsSync(join(root, "var/run/keyhaven-hsm/p11-kit.sock"))).toBe(true);

    const server = await spawnServer({
      commandLine: keyService.args!.map(map),
      env: resolveEnv(keyService),
      dataDir,
      credentials,
    });
    try {
      expect(server.output()).toMatch(/"msg":"root key HSM connected"/);
      expect(await readyz(server)).toBe(200);
      const kms = kmsClient(server);
      const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
      const keyId = KeyMetadata!.KeyId!;
      const { CiphertextBlob: before } = await kms.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("through the sidecar") }),
      );

      // The sidecar dies: the key service stays up, says why it is not ready, and a
      // request that needs the token fails with an AWS error instead of hanging.
      await killSidecar();
      await until(async () => (await readyz(server)) === 503, "readiness to fail");
      const failed = await kms.send(new CreateKeyCommand({})).then(
        () => "ok",
        (e: Error) => e.name,
      );
      expect(failed).toBe("KMSInternalException");

      // The kubelet restarts it with the same command line: service resumes, no restart.
      await startSidecar();
      await until(async () => (await readyz(server)) === 200, "readiness to return");
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: before }));
      expect(Buffer.from(Plaintext!).toString()).toBe("through the sidecar");
      await kms.send(new CreateKeyCommand({}));
    } finally {
      await server.stop();
    }
    expect(server.output() + server.stderr()).not.toContain(SECRET.pin);
  }, 120_000);
});
