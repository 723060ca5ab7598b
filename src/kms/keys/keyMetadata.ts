import type { KeyMetadata } from "@aws-sdk/client-kms";
import type { KeyService } from "../keyService.js";
import type { KeyRecord } from "./keyRecord.js";
import { keySpecs } from "./keySpecs.js";

/** The KeyMetadata structure DescribeKey, CreateKey and friends return. */
export function keyMetadata(service: KeyService, key: KeyRecord): KeyMetadata {
  const spec = keySpecs[key.keySpec];
  const byUsage = (usage: string, algorithms: readonly string[] | undefined) =>
    key.keyUsage === usage && algorithms ? [...algorithms] : undefined;
  const metadata: KeyMetadata = {
    AWSAccountId: service.account,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: new Date(key.createdAt),
    Enabled: key.state === "Enabled",
    Description: key.description,
    KeyUsage: key.keyUsage as KeyMetadata["KeyUsage"],
    KeyState: key.state,
    Origin: key.origin as KeyMetadata["Origin"],
    KeyManager: "CUSTOMER",
    CustomerMasterKeySpec: key.keySpec as KeyMetadata["CustomerMasterKeySpec"],
    KeySpec: key.keySpec as KeyMetadata["KeySpec"],
    EncryptionAlgorithms: byUsage(
      "ENCRYPT_DECRYPT",
      spec?.encryptionAlgorithms,
    ) as KeyMetadata["EncryptionAlgorithms"],
    SigningAlgorithms: byUsage(
      "SIGN_VERIFY",
      spec?.signingAlgorithms,
    ) as KeyMetadata["SigningAlgorithms"],
    MacAlgorithms: byUsage(
      "GENERATE_VERIFY_MAC",
      spec?.macAlgorithms,
    ) as KeyMetadata["MacAlgorithms"],
    KeyAgreementAlgorithms: byUsage(
      "KEY_AGREEMENT",
      spec?.keyAgreementAlgorithms,
    ) as KeyMetadata["KeyAgreementAlgorithms"],
    MultiRegion: key.multiRegion !== undefined,
  };
  if (key.multiRegion) {
    const arn = (region: string) =>
      `arn:${service.partition}:kms:${region}:${service.account}:key/${key.keyId}`;
    metadata.MultiRegionConfiguration = {
      MultiRegionKeyType: key.multiRegion.primaryRegion === service.region ? "PRIMARY" : "REPLICA",
      PrimaryKey: {
        Arn: arn(key.multiRegion.primaryRegion),
        Region: key.multiRegion.primaryRegion,
      },
      ReplicaKeys: key.multiRegion.replicaRegions.map((Region) => ({ Arn: arn(Region), Region })),
    };
  }
  if (key.state === "PendingReplicaDeletion" && key.pendingWindowInDays !== undefined)
    metadata.PendingDeletionWindowInDays = key.pendingWindowInDays;
  if (key.state === "PendingDeletion" && key.deletionDate !== undefined) {
    metadata.DeletionDate = new Date(key.deletionDate);
    if (key.pendingWindowInDays !== undefined)
      metadata.PendingDeletionWindowInDays = key.pendingWindowInDays;
  }
  // Imported material: how and when it expires, while it is there.
  if (key.origin === "EXTERNAL" && key.materialImported === true) {
    if (key.expirationModel !== undefined)
      metadata.ExpirationModel = key.expirationModel as KeyMetadata["ExpirationModel"];
    if (key.materialExpiresAt !== undefined) metadata.ValidTo = new Date(key.materialExpiresAt);
  }
  // A key in a custom key store: the store, and Unavailable while it is not connected.
  if (key.customKeyStoreId !== undefined)
    Object.assign(
      metadata,
      service.customKeyStores?.keyMetadata(key) ?? {
        CustomKeyStoreId: key.customKeyStoreId,
      },
    );
  return metadata;
}
