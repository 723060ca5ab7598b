/** Shared checks of Sign and Verify: key usage, algorithm for the key spec, message type, digest length. */
import type { MessageType, SigningAlgorithmSpec } from "@aws-sdk/client-kms";
import {
  digestLength,
  ED25519PH_SUPPORTED,
  signingAlgorithms,
  type SigningAlgorithmInfo,
} from "../../crypto/signing.js";
import { loadEcdsaCurves } from "../../crypto/prehashed.js";
import { kmsError } from "../../errors.js";
import { assertKeyUsage, assertUsable } from "../../keys/keyState.js";
import { keySpecs } from "../../keys/keySpecs.js";
import type { KeyRecord } from "../../keys/keyRecord.js";
import { useKey } from "../../access/useKey.js";
import type { RequestContext } from "../../request.js";

export interface SigningRequest {
  readonly KeyId: string;
  readonly Message: Uint8Array;
  readonly MessageType?: MessageType | undefined;
  readonly SigningAlgorithm: SigningAlgorithmSpec;
}

export interface SigningKey {
  readonly key: KeyRecord;
  readonly info: SigningAlgorithmInfo;
  readonly isDigest: boolean;
}

export async function signingKey(
  ctx: RequestContext,
  input: SigningRequest,
  operation: "Sign" | "Verify",
): Promise<SigningKey> {
  const key = await useKey(ctx, input.KeyId, { aliases: true });
  assertUsable(key);
  assertKeyUsage(key, "SIGN_VERIFY", operation);
  const algorithm = input.SigningAlgorithm;
  const info = signingAlgorithms[algorithm];
  if (!info || !(keySpecs[key.keySpec]?.signingAlgorithms ?? []).includes(algorithm)) {
    throw kmsError(
      "InvalidKeyUsageException",
      `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`,
    );
  }
  const messageType = input.MessageType ?? "RAW";
  if (messageType !== "RAW" && messageType !== "DIGEST")
    throw kmsError(
      "ValidationException",
      `Message type ${messageType} is incompatible with key spec ${key.keySpec}.`,
    );
  if (info.messageType !== undefined && info.messageType !== messageType)
    throw kmsError(
      "ValidationException",
      `Message type ${messageType} is incompatible with algorithm ${algorithm}.`,
    );
  const isDigest = messageType === "DIGEST";
  if (isDigest && input.Message.length !== digestLength(info))
    throw kmsError("ValidationException", `Digest is invalid length for algorithm ${algorithm}.`);
  if (info.scheme === "ed25519ph" && !ED25519PH_SUPPORTED)
    throw kmsError(
      "UnsupportedOperationException",
      "ED25519_PH_SHA_512 (Ed25519ph, RFC 8032 HashEdDSA) is not supported by Keyhaven: the OpenSSL 3.0 in Node 20 implements only PureEdDSA. Use ED25519_SHA_512 with MessageType RAW.",
    );
  if (isDigest && info.scheme === "ecdsa") await loadEcdsaCurves();
  return { key, info, isDigest };
}
