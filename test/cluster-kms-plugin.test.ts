/**
 * Encryption at rest on the real API server (kube-up): Secrets go through
 * `keyhaven kms-plugin` (spawned as the built program) to a real key service, and the
 * bytes in etcd are read back through etcd's v3 JSON gateway. docs/encryption-at-rest.md.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, RotateKeyOnDemandCommand, type KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { spawnKmsPlugin, type SpawnedKmsPlugin } from "./support/kmsPlugin.js";
import { kmsClient, startInProcess, tempDir, type InProcessServer } from "./support/server.js";

const PREFIX = "k8s:enc:kms:v2:keyhaven:";

/** The EncryptionConfiguration of docs/encryption-at-rest.md, for a plugin on `socket`. */
function encryptionConfig(dir: string, socket: string): string {
  const file = join(dir, "encryption-config.yaml");
  writeFileSync(
    file,
    `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: keyhaven
          endpoint: unix://${socket}
          timeout: 5s
      - identity: {}
`,
  );
  // The watch cache would decrypt every Secret at start-up, hiding what an uncached read does.
  return `--encryption-provider-config=${file} --watch-cache=false`;
}

/** etcd's client URL, from the API server's command line (kube-up's pids: etcd, then it). */
function etcdUrl(plane: ControlPlane): string {
  const pid = readFileSync(join(plane.dir, "pids"), "utf8").trim().split("\n")[1]!;
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  return args.find((a) => a.startsWith("--etcd-servers="))!.slice("--etcd-servers=".length);
}

/** The raw value etcd holds under `key` (v3 JSON gateway: keys and values in base64). */
async function etcdGet(plane: ControlPlane, key: string): Promise<Buffer> {
  const res = await fetch(`${etcdUrl(plane)}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
  });
  const body = (await res.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  if (value === undefined) throw new Error(`etcd has no ${key}: ${JSON.stringify(body)}`);
  return Buffer.from(value, "base64");
}

async function etcdPut(plane: ControlPlane, key: string, value: Buffer): Promise<void> {
  const res = await fetch(`${etcdUrl(plane)}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({
      key: Buffer.from(key).toString("base64"),
      value: value.toString("base64"),
    }),
  });
  if (!res.ok) throw new Error(`etcd put ${key}: ${res.status} ${await res.text()}`);
}

const secretValue = (name: string) => `value of ${name}: ${"s3cr3t-".repeat(4)}${Math.random()}`;

async function createSecret(plane: ControlPlane, ns: string, name: string): Promise<string> {
  const value = secretValue(name);
  const res = await plane.request("POST", `/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    stringData: { value },
  });
  if (res.status !== 201) throw new Error(`create secret ${name}: ${JSON.stringify(res.body)}`);
  return value;
}

async function readSecret(plane: ControlPlane, ns: string, name: string) {
  const res = await plane.request("GET", `/api/v1/namespaces/${ns}/secrets/${name}`);
  const data = (res.body as { data?: { value?: string } }).data;
  return {
    status: res.status,
    value: data?.value === undefined ? undefined : Buffer.from(data.value, "base64").toString(),
    message: (res.body as { message?: string }).message ?? "",
  };
}

/** Polls `probe` until it returns a value, or fails after `ms`. */
async function eventually<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("Secrets encrypted at rest with keyhaven kms-plugin", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  let keyArn: string;
  let plugin: SpawnedKmsPlugin;
  let plane: ControlPlane;
  let args: string;
  let ns: string;
  const socket = join(tempDir("keyhaven-kms-"), "kms.sock");
  const written = new Map<string, string>();
  // A second control plane and its plugin.
  let otherPlane: ControlPlane | undefined;
  let other: SpawnedKmsPlugin | undefined;
  let otherSocket = "";

  const startPlugin = async () =>
    (plugin = await spawnKmsPlugin({ server, keyId: keyArn, socket, clusterName: "cluster-a" }));

  beforeAll(async () => {
    server = await startInProcess();
    kms = kmsClient(server);
    keyArn = (await kms.send(new CreateKeyCommand({ Description: "etcd encryption" }))).KeyMetadata!
      .Arn!;
    // The API server checks the plugin while it starts: the socket must be there first.
    await startPlugin();
    args = encryptionConfig(tempDir("keyhaven-encryption-"), socket);
    plane = await startControlPlane({ apiserverArgs: args });
    ns = await createNamespace(plane, "encrypted");
  }, 120_000);
  afterAll(async () => {
    await otherPlane?.stop();
    await other?.stop();
    await plane?.stop();
    await plugin?.stop();
    kms?.destroy();
    await server?.stop();
  });

  it("stores a Secret as k8s:enc:kms:v2 ciphertext in etcd and reads it back unchanged", async () => {
    const value = await createSecret(plane, ns, "first");
    written.set("first", value);
    expect(await readSecret(plane, ns, "first")).toMatchObject({ status: 200, value });
    const stored = await etcdGet(plane, `/registry/secrets/${ns}/first`);
    expect(stored.subarray(0, PREFIX.length).toString()).toBe(PREFIX);
    expect(stored.includes(Buffer.from("s3cr3t-"))).toBe(false);
    expect(stored.includes(Buffer.from(Buffer.from(value).toString("base64")))).toBe(false);
    // The key id the plugin returned is stored (in clear) beside the ciphertext.
    expect(stored.includes(Buffer.from(`${keyArn}#1`))).toBe(true);
  });

  it("after RotateKeyOnDemand writes new Secrets under the new key id, reads old ones, and migrates them by a replace", async () => {
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyArn }));
    // The API server asks Status when its health check is due (about every 20 s) and then
    // makes a new DEK seed; each probe writes a Secret and looks at the key id in etcd.
    let n = 0;
    const rotated = await eventually("a Secret written under key id #2", 90_000, async () => {
      await plane.request("GET", "/healthz/kms-providers");
      const name = `after-rotation-${++n}`;
      written.set(name, await createSecret(plane, ns, name));
      const stored = await etcdGet(plane, `/registry/secrets/${ns}/${name}`);
      return stored.includes(Buffer.from(`${keyArn}#2`)) ? name : undefined;
    });
    expect((await readSecret(plane, ns, rotated)).value).toBe(written.get(rotated));
    const old = await etcdGet(plane, `/registry/secrets/${ns}/first`);
    expect(old.includes(Buffer.from(`${keyArn}#1`))).toBe(true);
    expect(await readSecret(plane, ns, "first")).toMatchObject({
      status: 200,
      value: written.get("first"),
    });

    // Storage migration: what `kubectl get secrets -A -o json | kubectl replace -f -` does.
    const current = await plane.request("GET", `/api/v1/namespaces/${ns}/secrets/first`);
    const replaced = await plane.request(
      "PUT",
      `/api/v1/namespaces/${ns}/secrets/first`,
      current.body,
    );
    expect(replaced.status).toBe(200);
    const migrated = await etcdGet(plane, `/registry/secrets/${ns}/first`);
    expect(migrated.includes(Buffer.from(`${keyArn}#2`))).toBe(true);
    expect(migrated.includes(Buffer.from(`${keyArn}#1`))).toBe(false);
    expect(await readSecret(plane, ns, "first")).toMatchObject({
      status: 200,
      value: written.get("first"),
    });
  }, 150_000);

  it("fails reads of a Secret whose DEK seed it has not cached while the plugin is down, and serves it when the plugin is back", async () => {
    // A second API server of the same cluster (as on another control-plane node) writes a
    // Secret with its own DEK seed; its bytes land in this cluster's etcd.
    otherSocket = join(tempDir("keyhaven-kms-"), "kms.sock");
    other = await spawnKmsPlugin({
      server,
      keyId: keyArn,
      socket: otherSocket,
      clusterName: "cluster-a",
    });
    otherPlane = await startControlPlane({
      apiserverArgs: encryptionConfig(tempDir("keyhaven-encryption-"), otherSocket),
    });
    await createNamespace(otherPlane, ns);
    const value = await createSecret(otherPlane, ns, "from-other-server");
    written.set("from-other-server", value);
    await plugin.stop();
    await etcdPut(
      plane,
      `/registry/secrets/${ns}/from-other-server`,
      await etcdGet(otherPlane, `/registry/secrets/${ns}/from-other-server`),
    );
    const down = await readSecret(plane, ns, "from-other-server");
    expect(down.status).toBe(500);
    expect(down.value).toBeUndefined();
    expect(down.message).toMatch(/failed to decrypt DEK/);
    // Secrets whose DEK seed is cached still read.
    expect(await readSecret(plane, ns, "first")).toMatchObject({
      status: 200,
      value: written.get("first"),
    });
    await startPlugin();
    const back = await eventually("the Secret to read again", 60_000, async () => {
      const r = await readSecret(plane, ns, "from-other-server");
      return r.status === 200 ? r : undefined;
    });
    expect(back.value).toBe(value);
  }, 150_000);

  it("does not decrypt a Secret copied into another cluster's etcd (the cluster name is authenticated)", async () => {
    // The other control plane becomes another cluster: its plugin now names cluster-b.
    await other!.stop();
    other = await spawnKmsPlugin({
      server,
      keyId: keyArn,
      socket: otherSocket,
      clusterName: "cluster-b",
    });
    await etcdPut(
      otherPlane!,
      `/registry/secrets/${ns}/first`,
      await etcdGet(plane, `/registry/secrets/${ns}/first`),
    );
    const copied = await readSecret(otherPlane!, ns, "first");
    expect(copied.status).toBe(500);
    expect(copied.value).toBeUndefined();
    expect(copied.message).toMatch(/InvalidCiphertextException/);
    // The same bytes still read in their own cluster.
    expect(await readSecret(plane, ns, "first")).toMatchObject({
      status: 200,
      value: written.get("first"),
    });
    await otherPlane!.stop();
    otherPlane = undefined;
  }, 150_000);

  it("comes back from a cold start of key service, plugin and control plane on the same data, and reads every Secret", async () => {
    await plane.stop();
    await plugin.stop();
    await server.stop();
    kms.destroy();
    server = await startInProcess({ dataDir: server.dataDir });
    kms = kmsClient(server);
    await startPlugin();
    plane = await startControlPlane({ apiserverArgs: args, dir: plane.dir });
    const list = await plane.request("GET", `/api/v1/namespaces/${ns}/secrets`);
    expect(list.status).toBe(200);
    const items = (
      list.body as { items: { metadata: { name: string }; data: { value: string } }[] }
    ).items;
    expect(
      new Map(items.map((s) => [s.metadata.name, Buffer.from(s.data.value, "base64").toString()])),
    ).toEqual(written);
  }, 150_000);
});
