/**
 * The key service from dist/ with one key that has 100 material versions: it is
 * created, a ciphertext is made under version 1, the key is rotated 99 times through
 * the lifecycle's own rotation (RotateKeyOnDemand stops at AWS's 25), and a second
 * ciphertext is made under version 100. Both blobs are announced in `info`.
 */
import { runChild } from "../lib/child.mjs";
import { callKms } from "../lib/sign.mjs";
import { benchCredential, startBenchKeyService } from "../lib/keyService.mjs";
import { rotateKeyMaterial } from "../../dist/src/bench/keyService.js";

runChild(async ({ dataDir, credential, region, account, versions = 100 }) => {
  const { running, stop } = await startBenchKeyService({
    dataDir,
    credentials: [benchCredential(credential, account)],
    region,
    account,
  });
  const self = { url: running.url, region, credential };
  const call = async (operation, input) => {
    const { status, json } = await callKms(self, operation, input);
    if (status !== 200) throw new Error(`${operation}: ${status} ${JSON.stringify(json)}`);
    return json;
  };
  const plaintext = Buffer.alloc(1024, 7).toString("base64");
  const keyId = (await call("CreateKey", { Description: "bench: 100 versions" })).KeyMetadata.KeyId;
  const oldest = (await call("Encrypt", { KeyId: keyId, Plaintext: plaintext })).CiphertextBlob;
  for (let v = 1; v < versions; v++) await rotateKeyMaterial(running.service, keyId, "AUTOMATIC");
  const newest = (await call("Encrypt", { KeyId: keyId, Plaintext: plaintext })).CiphertextBlob;
  const current = (await running.service.store.getKey(keyId)).currentMaterialVersion;
  return {
    url: running.url,
    info: { keyId, versions: current, oldest, newest },
    stop,
  };
});
