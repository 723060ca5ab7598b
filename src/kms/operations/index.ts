/**
 * The dispatch table: X-Amz-Target operation name → handler. One line per operation.
 * A Map, so that a caller-supplied name such as `constructor` or `toString` finds nothing.
 */
import { createAlias } from "./createAlias.js";
import { deleteAlias } from "./deleteAlias.js";
import { listAliases } from "./listAliases.js";
import { updateAlias } from "./updateAlias.js";
import { createKey } from "./createKey.js";
import { decrypt } from "./decrypt.js";
import { describeKey } from "./describeKey.js";
import { disableKey } from "./disableKey.js";
import { enableKey } from "./enableKey.js";
import { encrypt } from "./encrypt.js";
import { generateDataKey, generateDataKeyWithoutPlaintext } from "./generateDataKey.js";
import { generateRandom } from "./generateRandom.js";
import { getKeyPolicy } from "./getKeyPolicy.js";
import { listKeyPolicies } from "./listKeyPolicies.js";
import { putKeyPolicy } from "./putKeyPolicy.js";
import { listKeys } from "./listKeys.js";
import type { OperationHandler } from "./operation.js";
import { reEncrypt } from "./reEncrypt.js";
import { listResourceTags } from "./listResourceTags.js";
import { tagResource } from "./tagResource.js";
import { untagResource } from "./untagResource.js";
import { updateKeyDescription } from "./updateKeyDescription.js";
import { enableKeyRotation } from "./enableKeyRotation.js";
import { disableKeyRotation } from "./disableKeyRotation.js";
import { getKeyRotationStatus } from "./getKeyRotationStatus.js";
import { rotateKeyOnDemand } from "./rotateKeyOnDemand.js";
import { replicateKey } from "./replicateKey.js";
import { updatePrimaryRegion } from "./updatePrimaryRegion.js";
import { keyhavenGetPeeringKey, keyhavenReplicaDeleted, keyhavenSyncReplica } from "./peering.js";
import { listKeyRotations } from "./listKeyRotations.js";
import { scheduleKeyDeletion } from "./scheduleKeyDeletion.js";
import { cancelKeyDeletion } from "./cancelKeyDeletion.js";
import { getParametersForImport } from "./getParametersForImport.js";
import { importKeyMaterial } from "./importKeyMaterial.js";
import { deleteImportedKeyMaterial } from "./deleteImportedKeyMaterial.js";
import { sign } from "./sign.js";
import { verify } from "./verify.js";
import { getPublicKey } from "./getPublicKey.js";
import { generateMac } from "./generateMac.js";
import { verifyMac } from "./verifyMac.js";
import { generateDataKeyPair, generateDataKeyPairWithoutPlaintext } from "./generateDataKeyPair.js";
import { deriveSharedSecret } from "./deriveSharedSecret.js";
import { createGrant } from "./createGrant.js";
import { listGrants } from "./listGrants.js";
import { listRetirableGrants } from "./listRetirableGrants.js";
import { retireGrant } from "./retireGrant.js";
import { revokeGrant } from "./revokeGrant.js";
import { createCustomKeyStore } from "./createCustomKeyStore.js";
import { describeCustomKeyStores } from "./describeCustomKeyStores.js";
import { connectCustomKeyStore } from "./connectCustomKeyStore.js";
import { disconnectCustomKeyStore } from "./disconnectCustomKeyStore.js";
import { updateCustomKeyStore } from "./updateCustomKeyStore.js";
import { deleteCustomKeyStore } from "./deleteCustomKeyStore.js";

export const operations: ReadonlyMap<string, OperationHandler> = new Map(
  Object.entries({
    CreateKey: createKey,
    DescribeKey: describeKey,
    ListKeys: listKeys,
    UpdateKeyDescription: updateKeyDescription,
    EnableKey: enableKey,
    DisableKey: disableKey,
    Encrypt: encrypt,
    Decrypt: decrypt,
    ReEncrypt: reEncrypt,
    GenerateDataKey: generateDataKey,
    GenerateDataKeyWithoutPlaintext: generateDataKeyWithoutPlaintext,
    GenerateRandom: generateRandom,
    CreateAlias: createAlias,
    UpdateAlias: updateAlias,
    DeleteAlias: deleteAlias,
    ListAliases: listAliases,
    TagResource: tagResource,
    UntagResource: untagResource,
    ListResourceTags: listResourceTags,
    GetKeyPolicy: getKeyPolicy,
    PutKeyPolicy: putKeyPolicy,
    ListKeyPolicies: listKeyPolicies,
    EnableKeyRotation: enableKeyRotation,
    DisableKeyRotation: disableKeyRotation,
    GetKeyRotationStatus: getKeyRotationStatus,
    RotateKeyOnDemand: rotateKeyOnDemand,
    ListKeyRotations: listKeyRotations,
    ScheduleKeyDeletion: scheduleKeyDeletion,
    CancelKeyDeletion: cancelKeyDeletion,
    GetParametersForImport: getParametersForImport,
    ImportKeyMaterial: importKeyMaterial,
    DeleteImportedKeyMaterial: deleteImportedKeyMaterial,
    Sign: sign,
    Verify: verify,
    GetPublicKey: getPublicKey,
    GenerateMac: generateMac,
    VerifyMac: verifyMac,
    GenerateDataKeyPair: generateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext: generateDataKeyPairWithoutPlaintext,
    DeriveSharedSecret: deriveSharedSecret,
    CreateGrant: createGrant,
    ListGrants: listGrants,
    ListRetirableGrants: listRetirableGrants,
    RetireGrant: retireGrant,
    RevokeGrant: revokeGrant,
    CreateCustomKeyStore: createCustomKeyStore,
    DescribeCustomKeyStores: describeCustomKeyStores,
    ConnectCustomKeyStore: connectCustomKeyStore,
    DisconnectCustomKeyStore: disconnectCustomKeyStore,
    UpdateCustomKeyStore: updateCustomKeyStore,
    DeleteCustomKeyStore: deleteCustomKeyStore,
    ReplicateKey: replicateKey,
    UpdatePrimaryRegion: updatePrimaryRegion,
    // Between Keyhaven instances (multi-Region keys); not in AWS's model.
    KeyhavenGetPeeringKey: keyhavenGetPeeringKey,
    KeyhavenSyncReplica: keyhavenSyncReplica,
    KeyhavenReplicaDeleted: keyhavenReplicaDeleted,
  } satisfies Record<string, OperationHandler>),
);
