import type {
  GenerateDataKeyPairRequest,
  GenerateDataKeyPairResponse,
  GenerateDataKeyPairWithoutPlaintextRequest,
  GenerateDataKeyPairWithoutPlaintextResponse,
} from "@aws-sdk/client-kms";
import { asymmetricSpecs, generateAsymmetricKeyPair } from "../crypto/asymmetric.js";
import { kmsError } from "../errors.js";
import { defineOperation, dryRun, type WithRequired, unsupportedRecipient } from "./operation.js";
import type { RequestContext } from "../request.js";
import { sealSymmetric } from "./shared/symmetricEncryption.js";
import { encryptionKey } from "./shared/encryptionKey.js";

/**
 * A fresh key pair: the private key as PKCS#8 DER encrypted under a symmetric key
 * (with the encryption context, like GenerateDataKey), the public key as SPKI DER.
 */
async function dataKeyPair(
  ctx: RequestContext,
  input: WithRequired<GenerateDataKeyPairRequest, "KeyId" | "KeyPairSpec">,
  operation: string,
) {
  const key = await encryptionKey(ctx, input.KeyId, operation, undefined);
  if (!asymmetricSpecs[input.KeyPairSpec])
    throw kmsError(
      "UnsupportedOperationException",
      `KeyPairSpec ${input.KeyPairSpec} is not supported by Keyhaven; use RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1 or ECC_NIST_EDWARDS25519.`,
    );
  dryRun(input);
  const pair = await generateAsymmetricKeyPair(input.KeyPairSpec);
  const ciphertext = await sealSymmetric(ctx, key, pair.privateKeyDer, input.EncryptionContext);
  return { key, pair, ciphertext };
}

export const generateDataKeyPair = defineOperation<
  WithRequired<GenerateDataKeyPairRequest, "KeyId" | "KeyPairSpec">,
  GenerateDataKeyPairResponse
>(async (ctx, input) => {
  unsupportedRecipient(input);
  const { key, pair, ciphertext } = await dataKeyPair(ctx, input, "GenerateDataKeyPair");
  return {
    PrivateKeyCiphertextBlob: ciphertext,
    PrivateKeyPlaintext: pair.privateKeyDer,
    PublicKey: pair.publicKeyDer,
    KeyId: key.arn,
    KeyPairSpec: input.KeyPairSpec,
  };
});

export const generateDataKeyPairWithoutPlaintext = defineOperation<
  WithRequired<GenerateDataKeyPairWithoutPlaintextRequest, "KeyId" | "KeyPairSpec">,
  GenerateDataKeyPairWithoutPlaintextResponse
>(async (ctx, input) => {
  const { key, pair, ciphertext } = await dataKeyPair(
    ctx,
    input,
    "GenerateDataKeyPairWithoutPlaintext",
  );
  pair.privateKeyDer.fill(0);
  return {
    PrivateKeyCiphertextBlob: ciphertext,
    PublicKey: pair.publicKeyDer,
    KeyId: key.arn,
    KeyPairSpec: input.KeyPairSpec,
  };
});
