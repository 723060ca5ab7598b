import type { GetPublicKeyRequest, GetPublicKeyResponse } from "@aws-sdk/client-kms";
import { asymmetricSpecs } from "../crypto/asymmetric.js";
import { kmsError } from "../errors.js";
import { keyMetadata } from "../keys/keyMetadata.js";
import { assertUsable } from "../keys/keyState.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";

/** The public key as DER SubjectPublicKeyInfo, with the usage and algorithms AWS returns beside it. */
export const getPublicKey = defineOperation<
  WithRequired<GetPublicKeyRequest, "KeyId">,
  GetPublicKeyResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: true });
  assertUsable(key);
  if (!asymmetricSpecs[key.keySpec])
    throw kmsError(
      "UnsupportedOperationException",
      `${key.arn} has key spec ${key.keySpec}, which has no public key. GetPublicKey works on RSA and ECC keys.`,
    );
  const { publicKeyDer } = await ctx.service.keyPair(key);
  const metadata = keyMetadata(ctx.service, key);
  return {
    KeyId: key.arn,
    PublicKey: publicKeyDer,
    CustomerMasterKeySpec: metadata.CustomerMasterKeySpec,
    KeySpec: metadata.KeySpec,
    KeyUsage: metadata.KeyUsage,
    EncryptionAlgorithms: metadata.EncryptionAlgorithms,
    SigningAlgorithms: metadata.SigningAlgorithms,
    KeyAgreementAlgorithms: metadata.KeyAgreementAlgorithms,
  };
});
