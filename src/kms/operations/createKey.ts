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
import { customKeyStores } from "./shared/customKeyStore.js";

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
    // AWS_CLOUDHSM: the key is generated in (and never leaves) a custom key store's token.
    // EXTERNAL_KEY_STORE: the key has its own material and an external key at an XKS proxy.
    const inCustomKeyStore = origin === "AWS_CLOUDHSM" || origin === "EXTERNAL_KEY_STORE";
    if ((origin === "EXTERNAL_KEY_STORE") !== (input.XksKeyId !== undefined))
      throw kmsError(
        "ValidationException",
        "XksKeyId goes with Origin EXTERNAL_KEY_STORE, and that Origin needs an XksKeyId.",
      );
    if (inCustomKeyStore !== (input.CustomKeyStoreId !== undefined))
      throw kmsError(
        "ValidationException",
        "A key in a custom key store needs both Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE and its CustomKeyStoreId.",
      );
    if (inCustomKeyStore && (keySpec !== "SYMMETRIC_DEFAULT" || keyUsage !== "ENCRYPT_DECRYPT"))
      throw kmsError(
        "UnsupportedOperationException",
        "A custom key store holds only symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).",
      );
    if (input.MultiRegion && inCustomKeyStore)
      throw kmsError(
        "UnsupportedOperationException",
        "Multi-Region keys cannot be created in a custom key store; omit MultiRegion or CustomKeyStoreId.",
      );
    const store =
      input.CustomKeyStoreId === undefined
        ? undefined
        : customKeyStores(ctx).connectionForNewKey(input.CustomKeyStoreId);
    if (store && store.record.type !== origin)
      throw kmsError(
        "ValidationException",
        `Custom key store ${store.record.id} is of type ${store.record.type}; Origin must be ${store.record.type === "AWS_CLOUDHSM" ? "AWS_CLOUDHSM" : "EXTERNAL_KEY_STORE"}.`,
      );
    if (store && input.XksKeyId !== undefined)
      await customKeyStores(ctx).assertXksKeyFree(store.record.id, input.XksKeyId);
    // Only the token of an AWS_CLOUDHSM store holds the key instead of stored material.
    const hsm = origin === "AWS_CLOUDHSM" ? store : undefined;
    const tags = mergeTags([], fromRequestTags(input.Tags));
    const policy = input.Policy ?? defaultKeyPolicy(service.account);
    checkPolicyDocument(policy);

    // Multi-Region keys (docs/multi-region.md): `mrk-` ids, the same in every Region.
    const keyId = input.MultiRegion ? `mrk-${randomBytes(16).toString("hex")}` : randomUUID();
    if (input.Policy !== undefined)
      await checkPolicyLockout(ctx, policy, { keyId, arn: service.keyArn(keyId) });
    const now = service.clock.now().getTime();
    // An EXTERNAL key gets its material from ImportKeyMaterial, a custom key store's from its token.
    await store?.connection.createKey(
      {
        keyId,
        arn: service.keyArn(keyId),
        ...(input.XksKeyId !== undefined && { xksKeyId: input.XksKeyId }),
      },
      { principal: ctx.caller.principal, operation: ctx.operation, requestId: ctx.requestId },
    );
    const material =
      external || hsm ? undefined : await generateKeyMaterial(keySpec, service.random);
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
      ...(store && { customKeyStoreId: store.record.id }),
      ...(input.XksKeyId !== undefined && { xksKeyId: input.XksKeyId }),
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
