/**
 * A KmsKey in an external key store (issue 21 item 3, docs/operator.md) on the real API
 * server: key service A (spawned) has an EXTERNAL_KEY_STORE custom key store whose XKS proxy
 * is key service B (in process, HTTPS, --xks-proxy-uri-path); `keyhaven controller` on A
 * reconciles a KmsKey with origin EXTERNAL_KEY_STORE, customKeyStoreId and xksKeyId naming
 * B's key. The key reaches Ready with B's key as its XksKeyConfiguration and encrypts and
 * decrypts through B; the CRD's CEL rules refuse xksKeyId without that origin and a changed
 * xksKeyId.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  EncryptCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsKey } from "../src/api/v1alpha1/types.js";
import { eventually } from "./kube/drive.js";
import { kmsKey } from "./kube/fixtures.js";
import {
  applyCrds,
  controllerIdentity,
  createObject,
  kmsEnvironment,
  mergeObject,
  startControllerProgram,
  waitReady,
  type ControllerProgram,
} from "./kube/realCluster.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { kmsClient, spawnServer, tempDir, type SpawnedServer } from "./support/server.js";
import { startXksProxy, XKS_PREFIX, type XksProxyFixture } from "./support/xksProxy.js";

const NS = "xks-apps";
let plane: ControlPlane;
let b: XksProxyFixture;
let a: SpawnedServer;
let kmsA: KMSClient;
let controller: ControllerProgram;
let storeId: string;

beforeAll(async () => {
  [plane, b] = await Promise.all([startControlPlane(), startXksProxy()]);
  const caFile = join(tempDir("keyhaven-xks-ca-"), "b.pem");
  writeFileSync(caFile, b.ca);
  a = await spawnServer({ timeoutMs: 60_000, args: ["--xks-client-ca", caFile] });
  kmsA = kmsClient(a);
  ({ CustomKeyStoreId: storeId } = (await kmsA.send(
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: "b-proxy",
      CustomKeyStoreType: "EXTERNAL_KEY_STORE",
      XksProxyUriEndpoint: `https://localhost:${new URL(b.server.url).port}`,
      XksProxyUriPath: `${XKS_PREFIX}/kms/xks/v1`,
      XksProxyConnectivity: "PUBLIC_ENDPOINT",
      XksProxyAuthenticationCredential: {
        AccessKeyId: b.credential.accessKeyId,
        RawSecretAccessKey: b.credential.secretAccessKey,
      },
    }),
  )) as { CustomKeyStoreId: string });
  await kmsA.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  await eventually(async () => {
    const out = await kmsA.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }));
    return out.CustomKeyStores?.[0]?.ConnectionState === "CONNECTED";
  }, "A's external key store CONNECTED");
  await applyCrds(plane);
  const own = "keyhaven-xks";
  await createNamespace(plane, own);
  await createNamespace(plane, NS);
  const identity = await controllerIdentity(plane, own, "keyhaven-controller");
  controller = await startControllerProgram(
    [
      "--kubeconfig",
      identity.kubeconfig,
      "--namespace",
      own,
      "--watch-namespace",
      NS,
      "--metrics-listen",
      "127.0.0.1:0",
      "--disable-webhook",
    ],
    kmsEnvironment(a, a.credentials),
  );
}, 180_000);

afterAll(async () => {
  await controller?.kill();
  kmsA?.destroy();
  await a?.stop();
  await b?.stop();
  await plane?.stop();
});

describe("KmsKey in an external key store, on the real API server", () => {
  it("reaches Ready with B's key as its XksKeyConfiguration, and encrypts and decrypts through B", async () => {
    const created = await createObject(plane, NS, {
      ...kmsKey("held-outside"),
      spec: {
        description: "key material held by B",
        origin: "EXTERNAL_KEY_STORE",
        customKeyStoreId: storeId,
        xksKeyId: b.keyId,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const key = await waitReady<KmsKey>(plane, "KmsKey", NS, "held-outside", 60_000);
    const keyId = key.status!.keyId!;
    const { KeyMetadata } = await kmsA.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata).toMatchObject({
      Origin: "EXTERNAL_KEY_STORE",
      CustomKeyStoreId: storeId,
      XksKeyConfiguration: { Id: b.keyId },
      KeyState: "Enabled",
    });
    const { CiphertextBlob } = await kmsA.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("held outside") }),
    );
    const { Plaintext } = await kmsA.send(new DecryptCommand({ CiphertextBlob }));
    expect(Buffer.from(Plaintext!).toString()).toBe("held outside");
  }, 120_000);

  it("the CRD refuses xksKeyId without origin EXTERNAL_KEY_STORE, and a changed xksKeyId", async () => {
    const stray = await createObject(plane, NS, {
      ...kmsKey("stray"),
      spec: { xksKeyId: b.keyId },
    });
    expect(stray.status).toBe(422);
    expect(JSON.stringify(stray.body)).toContain("xksKeyId goes with origin EXTERNAL_KEY_STORE");
    const changed = await mergeObject(plane, "KmsKey", NS, "held-outside", {
      spec: { xksKeyId: "another-key" },
    });
    expect(changed.status).toBe(422);
    expect(JSON.stringify(changed.body)).toContain("xksKeyId is immutable");
  }, 60_000);
});
