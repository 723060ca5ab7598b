/** The dispatch table: X-Amz-Target operation name → handler. One line per operation. */
import { createAlias, deleteAlias, listAliases, updateAlias } from "./aliases.js";
import { createKey } from "./createKey.js";
import { decrypt } from "./decrypt.js";
import { describeKey } from "./describeKey.js";
import { disableKey, enableKey } from "./enableDisableKey.js";
import { encrypt } from "./encrypt.js";
import { generateDataKey, generateDataKeyWithoutPlaintext } from "./generateDataKey.js";
import { generateRandom } from "./generateRandom.js";
import { getKeyPolicy, listKeyPolicies, putKeyPolicy } from "./keyPolicies.js";
import { listKeys } from "./listKeys.js";
import type { OperationHandler } from "./operation.js";
import { reEncrypt } from "./reEncrypt.js";
import { listResourceTags, tagResource, untagResource } from "./tags.js";
import { updateKeyDescription } from "./updateKeyDescription.js";
import { sign } from "./sign.js";
import { verify } from "./verify.js";
import { getPublicKey } from "./getPublicKey.js";
import { generateMac } from "./generateMac.js";
import { verifyMac } from "./verifyMac.js";
import { generateDataKeyPair, generateDataKeyPairWithoutPlaintext } from "./generateDataKeyPair.js";
import { deriveSharedSecret } from "./deriveSharedSecret.js";

export const operations: Readonly<Record<string, OperationHandler>> = {
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
  Sign: sign,
  Verify: verify,
  GetPublicKey: getPublicKey,
  GenerateMac: generateMac,
  VerifyMac: verifyMac,
  GenerateDataKeyPair: generateDataKeyPair,
  GenerateDataKeyPairWithoutPlaintext: generateDataKeyPairWithoutPlaintext,
  DeriveSharedSecret: deriveSharedSecret,
};
