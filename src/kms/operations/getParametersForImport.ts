import { randomBytes } from "node:crypto";
import type {
  GetParametersForImportRequest,
  GetParametersForImportResponse,
} from "@aws-sdk/client-kms";
import {
  generateWrappingKeyPair,
  sealImportToken,
  SUPPORTED_WRAPPING_ALGORITHMS,
  WRAPPING_KEY_BITS,
} from "../crypto/importWrapping.js";
import { kmsError } from "../errors.js";
import { assertImportable } from "../keys/keyState.js";
import { DAY_MS } from "../keys/dueDates.js";
import { useKey } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { importableSpec } from "../keys/importRules.js";

export const IMPORT_PARAMETERS_VALID_MS = DAY_MS;

export const wrappingKeyContext = (tokenId: string) => `import-wrapping-key/${tokenId}`;

/**
 * A fresh RSA wrapping key pair and an import token, valid 24 hours. The private key is
 * stored wrapped under the root key; the token only names it (see crypto/importWrapping.ts).
 */
export const getParametersForImport = defineOperation<
  WithRequired<GetParametersForImportRequest, "KeyId" | "WrappingAlgorithm" | "WrappingKeySpec">,
  GetParametersForImportResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertImportable(key);
  importableSpec(key);
  if (input.WrappingAlgorithm === "RSAES_PKCS1_V1_5")
    throw kmsError(
      "ValidationException",
      "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported; use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.",
    );
  if (!SUPPORTED_WRAPPING_ALGORITHMS.includes(input.WrappingAlgorithm))
    throw kmsError(
      "UnsupportedOperationException",
      `WrappingAlgorithm ${input.WrappingAlgorithm} is not supported by Keyhaven; use one of ${SUPPORTED_WRAPPING_ALGORITHMS.join(", ")}.`,
    );
  if (WRAPPING_KEY_BITS[input.WrappingKeySpec] === undefined)
    throw kmsError(
      "UnsupportedOperationException",
      `WrappingKeySpec ${input.WrappingKeySpec} is not supported by Keyhaven; use RSA_2048, RSA_3072 or RSA_4096.`,
    );
  const service = ctx.service;
  const pair = await generateWrappingKeyPair(input.WrappingKeySpec);
  const tokenId = randomBytes(16).toString("hex");
  const now = service.clock.now().getTime();
  const expiresAt = now + IMPORT_PARAMETERS_VALID_MS;
  const wrappedPrivateKey = await service.rootKey.wrap(
    pair.privateKeyDer,
    wrappingKeyContext(tokenId),
  );
  pair.privateKeyDer.fill(0);
  await service.store.putImportParameters({
    tokenId,
    keyId: key.keyId,
    wrappingAlgorithm: input.WrappingAlgorithm,
    wrappingKeySpec: input.WrappingKeySpec,
    createdAt: now,
    expiresAt,
    wrappedPrivateKey,
  });
  const token = await sealImportToken((p, c) => service.rootKey.wrap(p, c), key.keyId, {
    tokenId,
    wrappingAlgorithm: input.WrappingAlgorithm,
    wrappingKeySpec: input.WrappingKeySpec,
    expiresAt,
  });
  return {
    KeyId: key.arn,
    ImportToken: token,
    PublicKey: pair.publicKeyDer,
    ParametersValidTo: new Date(expiresAt),
  };
});
