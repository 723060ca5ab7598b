import { randomBytes, randomUUID } from "node:crypto";
import type { CreateKeyRequest, CreateKeyResponse } from "@aws-sdk/client-kms";
import { checkPolicyDocument, defaultKeyPolicy } from "../authz/keyPolicy.js";
import { kmsError } from "../errors.js";
import { keyMetadata } from "../keys/keyMetadata.js";
import { keySpecs, type KeyUsage } from "../keys/keySpecs.js";
import { generateKeyMaterial } from "../crypto/keyMaterial.js";
import { fromRequestTags, mergeTags } from "../keys/tags.js";
import type { KeyRecord } from "../keys/keyRecord.js";
import { authorizeAction, checkPolicyLockout } from "../access/useKey.js";
import { defineOperation } from "./operation.js";

export const createKey = defineOperation<CreateKeyRequest, CreateKeyResponse>(
  async (ctx, input) => {
    const service = ctx.service;
    await authorizeAction(ctx);
    if (input.KeySpec !== undefined && input.CustomerMasterKeySpec !== undefined) {
      throw kmsError(
        "ValidationException",
        "You cannot specify both KeySpec and CustomerMasterKeySpec; use KeySpec.",
      );
    }
    const keySpec = input.KeySpec ?? input.CustomerMasterKeySpec ?? "SYMMETRIC_DEFAULT";
    const spec = keySpecs[keySpec];
    if (!spec) {
      throw kmsError(
        "UnsupportedOperationException",
        `KeySpec ${keySpec} is not supported by Keyhaven; use SYMMETRIC_DEFAULT, RSA_*, ECC_* or HMAC_*.`,
      );
    }
    const keyUsage = input.KeyUsage ?? spec.defaultUsage;
    if (keyUsage === undefined) {
      throw kmsError(
        "ValidationException",
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
      );
    }
    if (!spec.usages.includes(keyUsage as KeyUsage))
      throw kmsError(
        "ValidationException",
        `KeyUsage ${keyUsage} is not compatible with KeySpec ${keySpec}`,
      );
    const origin = input.Origin ?? "AWS_KMS";
    // EXTERNAL: the key waits in PendingImport for ImportKeyMaterial.
    const external = origin === "EXTERNAL";
    if (origin !== "AWS_KMS" && !external)
      throw kmsError(
        "UnsupportedOperationException",
        `Origin ${origin} is not supported by Keyhaven; use AWS_KMS or EXTERNAL.`,
      );
    if (input.CustomKeyStoreId !== undefined || input.XksKeyId !== undefined) {
      throw kmsError(
        "UnsupportedOperationException",
        "Custom key stores are not supported by Keyhaven; omit CustomKeyStoreId and XksKeyId.",
      );
    }
    const tags = mergeTags([], fromRequestTags(input.Tags));
    const policy = input.Policy ?? defaultKeyPolicy(service.account);
    checkPolicyDocument(policy);

    // Multi-Region keys (docs/multi-region.md): `mrk-` ids, the same in every Region.
    const keyId = input.MultiRegion ? `mrk-${randomBytes(16).toString("hex")}` : randomUUID();
    if (input.Policy !== undefined)
      await checkPolicyLockout(ctx, policy, { keyId, arn: service.keyArn(keyId) });
    const now = service.clock.now().getTime();
    // An EXTERNAL key gets its material from ImportKeyMaterial, not here.
    const material = external ? undefined : await generateKeyMaterial(keySpec, service.random);
    const wrapped = material && (await service.wrapMaterial(keyId, 1, material));
    material?.fill(0);
    const key: KeyRecord = {
      keyId,
      arn: service.keyArn(keyId),
      createdAt: now,
      description: input.Description ?? "",
      keySpec,
      keyUsage,
      origin,
      state: external ? "PendingImport" : "Enabled",
      ...(external && { materialImported: false }),
      policy,
      tags,
      currentMaterialVersion: 1,
      ...(input.MultiRegion && {
        multiRegion: { primaryRegion: service.region, replicaRegions: [] },
      }),
    };
    await service.store.createKey(
      key,
      wrapped === undefined ? undefined : { keyId, version: 1, createdAt: now, wrapped },
    );
    ctx.resources.push(key.arn);
    return { KeyMetadata: keyMetadata(service, key) };
  },
);
