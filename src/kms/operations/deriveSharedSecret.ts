import type { DeriveSharedSecretRequest, DeriveSharedSecretResponse } from "@aws-sdk/client-kms";
import { ecdhSharedSecret, parsePeerPublicKey } from "../crypto/asymmetric.js";
import { kmsError } from "../errors.js";
import { assertKeyUsage, assertUsable } from "../keys/keyState.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, dryRun, type WithRequired, unsupportedRecipient } from "./operation.js";

/** ECDH between a KEY_AGREEMENT key and a peer's public key (DER SubjectPublicKeyInfo). */
export const deriveSharedSecret = defineOperation<
  WithRequired<DeriveSharedSecretRequest, "KeyId" | "KeyAgreementAlgorithm" | "PublicKey">,
  DeriveSharedSecretResponse
>(async (ctx, input) => {
  unsupportedRecipient(input);
  const key = await useKey(ctx, input.KeyId, { aliases: true });
  assertUsable(key);
  assertKeyUsage(key, "KEY_AGREEMENT", "DeriveSharedSecret");
  // KeyAgreementAlgorithm is checked against the model enum, whose only value is ECDH.
  const { privateKey } = await ctx.service.keyPair(key);
  const peer = parsePeerPublicKey(input.PublicKey, privateKey);
  if (!peer)
    throw kmsError(
      "ValidationException",
      `PublicKey must be a DER-encoded SubjectPublicKeyInfo of an elliptic-curve key on the curve of ${key.arn} (${key.keySpec}).`,
    );
  dryRun(input);
  return {
    KeyId: key.arn,
    SharedSecret: ecdhSharedSecret(privateKey, peer),
    KeyAgreementAlgorithm: "ECDH",
    KeyOrigin: key.origin as DeriveSharedSecretResponse["KeyOrigin"],
  };
});
