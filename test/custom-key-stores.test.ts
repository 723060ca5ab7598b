/**
 * AWS_CLOUDHSM custom key stores backed by a PKCS#11 token: SoftHSM2 behind a real
 * `p11-kit server` (the sidecar shape), the real `keyhaven serve --pkcs11-module
 * p11-kit-client.so`, driven by the AWS CLI and boto3 (the lifecycle and key states), and
 * the AWS SDK under load while the sidecar is killed and brought back.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import {
  ConnectCustomKeyStoreCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  UpdateCustomKeyStoreCommand,
  type UpdateCustomKeyStoreCommandInput,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBoto3, runCli } from "./support/clients.js";
import {
  cliError,
  describeStore as describeServerStore,
  untilState as untilServerState,
} from "./support/customKeyStores.js";
import { kmsClient, spawnServer, type SpawnedServer } from "./support/server.js";
import { P11_KIT_CLIENT, SOFTHSM_MODULE, startSoftHsm, type SoftHsm } from "./support/softhsm.js";

/** A token label that fits AWS's CloudHsmClusterId pattern: cluster-[2-7a-zA-Z]{11,16}. */
const TOKEN = "keyhavenStoreA";
const CLUSTER = `cluster-${TOKEN}`;

/** What boto3's hsm-key command encrypts (test/clients/boto3_client.py). */
const HSM_PLAINTEXT = Buffer.from("kept by the HSM \x00\xff", "latin1");

let hsm: SoftHsm;
let server: SpawnedServer;

const serve = (dataDir?: string) =>
  spawnServer({
    args: ["--pkcs11-module", P11_KIT_CLIENT],
    env: hsm.env,
    ...(dataDir !== undefined && { dataDir }),
  });

beforeAll(async () => {
  hsm = await startSoftHsm(TOKEN);
  server = await serve();
});
afterAll(async () => {
  await server?.stop();
  await hsm?.stop();
});

const cli = (...args: string[]) => runCli(server, ["kms", ...args]);

/** `aws kms create-custom-key-store` for the token of `cluster`. */
const createStore = (name: string, cluster: string) =>
  cli(
    "create-custom-key-store",
    "--custom-key-store-name",
    name,
    "--cloud-hsm-cluster-id",
    cluster,
    "--key-store-password",
    hsm.pin,
    "--trust-anchor-certificate",
    "customer CA",
  );

const describeStore = (id: string) => describeServerStore(server, id);
const untilState = (id: string, state: string) => untilServerState(server, id, state);

/** The attributes of the token key labelled `label`, and what reading its value does (SoftHSM2 loaded directly, in a child). */
function probeTokenKey(label: string): { sensitive: boolean; extractable: boolean; value: string } {
  const script = `
    const p = require(${JSON.stringify(createRequire(import.meta.url).resolve("pkcs11js"))});
    const lib = new p.PKCS11();
    lib.load(${JSON.stringify(SOFTHSM_MODULE)});
    lib.C_Initialize();
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === ${JSON.stringify(TOKEN)});
    const session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION);
    lib.C_Login(session, p.CKU_USER, process.env.PIN);
    lib.C_FindObjectsInit(session, [{ type: p.CKA_LABEL, value: ${JSON.stringify(label)} }]);
    const [key] = lib.C_FindObjects(session, 2);
    lib.C_FindObjectsFinal(session);
    const [s, e] = lib.C_GetAttributeValue(session, key, [{ type: p.CKA_SENSITIVE }, { type: p.CKA_EXTRACTABLE }]);
    let value;
    try { lib.C_GetAttributeValue(session, key, [{ type: p.CKA_VALUE }]); value = "read"; }
    catch (err) { value = err.message; }
    process.stdout.write(JSON.stringify({ sensitive: s.value[0] === 1, extractable: e.value[0] === 1, value }));
    lib.C_Finalize();`;
  return JSON.parse(
    execFileSync(process.execPath, ["-e", script], {
      env: { ...process.env, ...hsm.directEnv, PIN: hsm.pin },
      encoding: "utf8",
    }),
  ) as { sensitive: boolean; extractable: boolean; value: string };
}

describe("AWS_CLOUDHSM custom key stores on a PKCS#11 token through the p11-kit server sidecar", () => {
  let storeId: string;
  let keyId: string;
  let ciphertext: string;

  it("creates, connects and describes a store with the AWS CLI; the password never comes back", async () => {
    const bad = await createStore("nowhere", "cluster-noSuchTokenHere");
    expect(cliError(bad)).toBe("CloudHsmClusterNotFoundException");
    const created = await createStore("hsm-a", CLUSTER);
    expect(created.code, created.stderr).toBe(0);
    storeId = created.json!["CustomKeyStoreId"] as string;
    expect(storeId).toMatch(/^cks-[0-9a-f]{17}$/);
    const again = await createStore("hsm-a", CLUSTER);
    expect(cliError(again)).toBe("CustomKeyStoreNameInUseException");

    expect(await describeStore(storeId)).toMatchObject({
      CustomKeyStoreId: storeId,
      CustomKeyStoreName: "hsm-a",
      CustomKeyStoreType: "AWS_CLOUDHSM",
      CloudHsmClusterId: CLUSTER,
      TrustAnchorCertificate: "customer CA",
      ConnectionState: "DISCONNECTED",
    });
    const notConnected = await cli(
      "create-key",
      "--origin",
      "AWS_CLOUDHSM",
      "--custom-key-store-id",
      storeId,
    );
    expect(cliError(notConnected)).toBe("CustomKeyStoreInvalidStateException");

    expect((await cli("connect-custom-key-store", "--custom-key-store-id", storeId)).code).toBe(0);
    await untilState(storeId, "CONNECTED");
    const all = await cli("describe-custom-key-stores");
    expect(all.stdout).not.toContain(hsm.pin);
    expect(server.output() + server.stderr()).not.toContain(hsm.pin);
    const missing = await cli(
      "connect-custom-key-store",
      "--custom-key-store-id",
      "cks-00000000000000000",
    );
    expect(cliError(missing)).toBe("CustomKeyStoreNotFoundException");
  }, 180_000);

  it("makes a key inside the token and uses it through the HSM with boto3", async () => {
    const r = await runBoto3(server, ["hsm-key", storeId]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.json!;
    expect(out).toMatchObject({
      store: {
        CustomKeyStoreId: storeId,
        ConnectionState: "CONNECTED",
        CloudHsmClusterId: CLUSTER,
      },
      origin: "AWS_CLOUDHSM",
      keyState: "Enabled",
      customKeyStoreId: storeId,
      cloudHsmClusterId: CLUSTER,
      roundTrip: true,
      reEncrypted: true,
      dataKey: true,
      dataKeyWithoutPlaintext: true,
      wrongContext: "InvalidCiphertextException",
      rotation: "UnsupportedOperationException",
    });
    keyId = out["keyId"] as string;
    ciphertext = out["ciphertextB64"] as string;
    // The key is the token's: sensitive, not extractable, its value refused.
    expect(probeTokenKey(keyId)).toEqual({
      sensitive: true,
      extractable: false,
      value: expect.stringMatching(/CKR_ATTRIBUTE_SENSITIVE/),
    });
  });

  it("disconnects: keys are Unavailable and refuse work; the store keeps its keys; reconnects", async () => {
    const kms = kmsClient(server);
    const update = (input: Omit<UpdateCustomKeyStoreCommandInput, "CustomKeyStoreId">) =>
      kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, ...input }));
    const connect = () => kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const disconnect = () =>
      kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const decrypt = () =>
      kms.send(
        new DecryptCommand({
          CiphertextBlob: Buffer.from(ciphertext, "base64"),
          EncryptionContext: { purpose: "hsm" },
        }),
      );

    expect(await failureCode(() => update({ KeyStorePassword: "another-pin" }))).toBe(
      "CustomKeyStoreInvalidStateException",
    );
    await update({ NewCustomKeyStoreName: "hsm-b" });

    expect((await cli("disconnect-custom-key-store", "--custom-key-store-id", storeId)).code).toBe(
      0,
    );
    expect(await describeStore(storeId)).toMatchObject({
      CustomKeyStoreName: "hsm-b",
      ConnectionState: "DISCONNECTED",
    });
    expect(await failureCode(disconnect)).toBe("CustomKeyStoreInvalidStateException");
    const described = await cli("describe-key", "--key-id", keyId);
    expect(described.json!["KeyMetadata"]).toMatchObject({
      KeyState: "Unavailable",
      CustomKeyStoreId: storeId,
      CloudHsmClusterId: CLUSTER,
      Origin: "AWS_CLOUDHSM",
    });
    expect(await failureCode(decrypt)).toBe("KMSInvalidStateException");
    expect(
      await failureCode(() =>
        kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })),
      ),
    ).toBe("CustomKeyStoreHasCMKsException");

    // A wrong password: FAILED with INVALID_CREDENTIALS; connect again only after a disconnect.
    await update({ KeyStorePassword: "wrong-pin" });
    await connect();
    expect(await untilState(storeId, "FAILED")).toMatchObject({
      ConnectionErrorCode: "INVALID_CREDENTIALS",
    });
    expect(await failureCode(connect)).toBe("CustomKeyStoreInvalidStateException");
    await disconnect();
    await update({ KeyStorePassword: hsm.pin });
    await connect();
    await untilState(storeId, "CONNECTED");
    const { Plaintext } = await decrypt();
    expect(Buffer.from(Plaintext!)).toEqual(HSM_PLAINTEXT);
  }, 180_000);

  it("reconnects a connected store when the key service restarts", async () => {
    const dataDir = server.dataDir;
    await server.stop();
    server = await serve(dataDir);
    await untilState(storeId, "CONNECTED");
    const { Plaintext } = await kmsClient(server).send(
      new DecryptCommand({
        CiphertextBlob: Buffer.from(ciphertext, "base64"),
        EncryptionContext: { purpose: "hsm" },
      }),
    );
    expect(Buffer.from(Plaintext!)).toEqual(HSM_PLAINTEXT);
  }, 120_000);

  it("refuses a second store on the same token, and deleting a store that is not disconnected", async () => {
    // A second store needs a token of its own: hsm-b holds this one.
    const created = await createStore("same-token", CLUSTER);
    expect(cliError(created)).toBe("CloudHsmClusterInUseException");
    const deleteConnected = await cli("delete-custom-key-store", "--custom-key-store-id", storeId);
    expect(cliError(deleteConnected)).toBe("CustomKeyStoreInvalidStateException");
  }, 120_000);

  it("keeps Encrypt under load clean while the sidecar is killed and brought back: AWS errors, no hang, nothing lost", async () => {
    const kms = kmsClient(server, { maxAttempts: 1 });
    const sealed: Array<{ blob: Uint8Array; text: string }> = [];
    const failures = new Map<string, number>();
    let slowest = 0;
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const text = `message ${n++}`;
        const started = Date.now();
        try {
          const { CiphertextBlob } = await kms.send(
            new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) }),
          );
          sealed.push({ blob: CiphertextBlob!, text });
        } catch (err) {
          const name = (err as Error).name;
          failures.set(name, (failures.get(name) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 20));
        } finally {
          slowest = Math.max(slowest, Date.now() - started);
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await until(() => sealed.length >= 20, "encryptions before the kill");
    await hsm.killServer();
    await until(
      () => (failures.get("KeyUnavailableException") ?? 0) >= 5,
      "failures while the sidecar is down",
    );
    const before = sealed.length;
    await hsm.startServer();
    await until(() => sealed.length >= before + 20, "encryptions after the sidecar came back");
    stop = true;
    await Promise.all(workers);
    // Only the AWS error for a key whose HSM cannot be reached now; every request answered in time.
    expect([...failures.keys()]).toEqual(["KeyUnavailableException"]);
    expect(slowest).toBeLessThan(6000);
    for (const { blob, text } of sealed) {
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
      expect(Buffer.from(Plaintext!).toString()).toBe(text);
    }
  }, 180_000);
});

async function failureCode(call: () => Promise<unknown>): Promise<string> {
  return call().then(
    () => "no error",
    (err: Error) => err.name,
  );
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
