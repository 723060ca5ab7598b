/**
 * A KmsKey with `spec.origin: AWS_CLOUDHSM` and `spec.customKeyStoreId`: the KmsKey
 * reconciler against the real key service, whose custom key store is a SoftHSM2 token
 * behind a real `p11-kit server`. The key is made inside that token (DescribeKey says so).
 */
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  EncryptCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findCondition } from "../src/api/v1alpha1/conditions.js";
import { harness, kmsKey, type Harness } from "./kube/fixtures.js";
import { P11_KIT_CLIENT, startSoftHsm, type SoftHsm } from "./support/softhsm.js";

/** AWS's CloudHsmClusterId pattern: cluster-[2-7a-zA-Z]{11,16}. */
const TOKEN = "kmskeystoretest";

let hsm: SoftHsm;
let h: Harness;
let storeId: string;

beforeAll(async () => {
  hsm = await startSoftHsm(TOKEN);
  // p11-kit-client.so reads the socket's address from this process's environment.
  process.env["P11_KIT_SERVER_ADDRESS"] = hsm.env["P11_KIT_SERVER_ADDRESS"];
  h = await harness(["--pkcs11-module", P11_KIT_CLIENT]);
  ({ CustomKeyStoreId: storeId } = (await h.kms.send(
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: "controller-test",
      CloudHsmClusterId: `cluster-${TOKEN}`,
      KeyStorePassword: hsm.pin,
      TrustAnchorCertificate: "customer CA",
    }),
  )) as { CustomKeyStoreId: string });
  await h.kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { CustomKeyStores } = await h.kms.send(
      new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }),
    );
    if (CustomKeyStores?.[0]?.ConnectionState === "CONNECTED") break;
    if (Date.now() > deadline) throw new Error(`store is ${CustomKeyStores?.[0]?.ConnectionState}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await hsm?.stop();
  delete process.env["P11_KIT_SERVER_ADDRESS"];
});

describe("KmsKey in a custom key store", () => {
  it("creates the key inside the store's token from spec.customKeyStoreId, Ready, and usable", async () => {
    const key = h.create(
      kmsKey("in-hsm", (s) => {
        s.origin = "AWS_CLOUDHSM";
        s.customKeyStoreId = storeId;
      }),
    );
    await h.keys.reconcile(key);
    const obj = h.key("in-hsm");
    expect(findCondition(obj.status?.conditions, "Ready")).toMatchObject({ status: "True" });
    const { KeyMetadata } = await h.kms.send(new DescribeKeyCommand({ KeyId: obj.status!.keyId! }));
    expect(KeyMetadata).toMatchObject({
      Origin: "AWS_CLOUDHSM",
      CustomKeyStoreId: storeId,
      CloudHsmClusterId: `cluster-${TOKEN}`,
      KeyState: "Enabled",
    });
    const { CiphertextBlob } = await h.kms.send(
      new EncryptCommand({ KeyId: obj.status!.keyId!, Plaintext: Buffer.from("in the token") }),
    );
    const { Plaintext } = await h.kms.send(new DecryptCommand({ CiphertextBlob }));
    expect(Buffer.from(Plaintext!).toString()).toBe("in the token");
  });
});
