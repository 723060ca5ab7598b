/**
 * AWS's key-state table (developer guide, "Key states of AWS KMS keys"), operation by
 * operation, for the four states a customer key can be in here. Every cell runs on a
 * fresh key brought into that state through the API.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateKeyDescriptionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { newSite, startAt, type LifecycleServer } from "./lifecycleSupport.js";
import { ManualClock } from "./support/manualClock.js";

type State = "Enabled" | "Disabled" | "PendingDeletion" | "PendingImport";
const STATES: readonly State[] = ["Enabled", "Disabled", "PendingDeletion", "PendingImport"];

interface Fixture {
  readonly keyId: string;
  readonly arn: string;
  /** Made under this key while it was Enabled. */
  readonly ciphertext: Uint8Array;
}

/** ok, or an AWS key-state footnote, or another expected error. */
type Outcome = "ok" | 1 | 3 | 4 | 5 | 6 | "AWS_KMS";

const footnote = (arn: string, outcome: Exclude<Outcome, "ok">) =>
  ({
    1: { name: "DisabledException", message: `${arn} is disabled.` },
    3: { name: "KMSInvalidStateException", message: `${arn} is pending deletion.` },
    4: { name: "KMSInvalidStateException", message: `${arn} is not pending deletion.` },
    5: { name: "KMSInvalidStateException", message: `${arn} is pending import.` },
    6: {
      name: "UnsupportedOperationException",
      message: `${arn} origin is EXTERNAL which is not valid for this operation.`,
    },
    AWS_KMS: {
      name: "UnsupportedOperationException",
      message: `${arn} origin is AWS_KMS which is not valid for this operation.`,
    },
  })[outcome];

type Call = (kms: KMSClient, f: Fixture) => Promise<unknown>;

/** Operation → its call, and the expected outcome for Enabled, Disabled, PendingDeletion, PendingImport. */
const TABLE: readonly [string, Call, readonly [Outcome, Outcome, Outcome, Outcome]][] = [
  [
    "Encrypt",
    (k, f) => k.send(new EncryptCommand({ KeyId: f.keyId, Plaintext: Buffer.from("p") })),
    ["ok", 1, 3, 5],
  ],
  [
    "GenerateDataKey",
    (k, f) => k.send(new GenerateDataKeyCommand({ KeyId: f.keyId, KeySpec: "AES_256" })),
    ["ok", 1, 3, 5],
  ],
  [
    "Decrypt",
    (k, f) => k.send(new DecryptCommand({ CiphertextBlob: f.ciphertext })),
    ["ok", 1, 3, 5],
  ],
  [
    "ReEncrypt",
    (k, f) =>
      k.send(new ReEncryptCommand({ CiphertextBlob: f.ciphertext, DestinationKeyId: f.keyId })),
    ["ok", 1, 3, 5],
  ],
  ["EnableKey", (k, f) => k.send(new EnableKeyCommand({ KeyId: f.keyId })), ["ok", "ok", 3, 5]],
  ["DisableKey", (k, f) => k.send(new DisableKeyCommand({ KeyId: f.keyId })), ["ok", "ok", 3, 5]],
  [
    "EnableKeyRotation",
    (k, f) => k.send(new EnableKeyRotationCommand({ KeyId: f.keyId })),
    ["ok", 1, 3, 6],
  ],
  [
    "DisableKeyRotation",
    (k, f) => k.send(new DisableKeyRotationCommand({ KeyId: f.keyId })),
    ["ok", 1, 3, 6],
  ],
  [
    "GetKeyRotationStatus",
    (k, f) => k.send(new GetKeyRotationStatusCommand({ KeyId: f.keyId })),
    ["ok", "ok", "ok", 6],
  ],
  [
    "RotateKeyOnDemand",
    (k, f) => k.send(new RotateKeyOnDemandCommand({ KeyId: f.keyId })),
    ["ok", 1, 3, 5],
  ],
  [
    "ListKeyRotations",
    (k, f) => k.send(new ListKeyRotationsCommand({ KeyId: f.keyId })),
    ["ok", "ok", "ok", "ok"],
  ],
  [
    "ScheduleKeyDeletion",
    (k, f) => k.send(new ScheduleKeyDeletionCommand({ KeyId: f.keyId })),
    ["ok", "ok", 3, "ok"],
  ],
  [
    "CancelKeyDeletion",
    (k, f) => k.send(new CancelKeyDeletionCommand({ KeyId: f.keyId })),
    [4, 4, "ok", 4],
  ],
  [
    "TagResource",
    (k, f) =>
      k.send(new TagResourceCommand({ KeyId: f.keyId, Tags: [{ TagKey: "a", TagValue: "b" }] })),
    ["ok", "ok", 3, "ok"],
  ],
  [
    "UntagResource",
    (k, f) => k.send(new UntagResourceCommand({ KeyId: f.keyId, TagKeys: ["a"] })),
    ["ok", "ok", 3, "ok"],
  ],
  [
    "UpdateKeyDescription",
    (k, f) => k.send(new UpdateKeyDescriptionCommand({ KeyId: f.keyId, Description: "d" })),
    ["ok", "ok", 3, "ok"],
  ],
  [
    "CreateAlias",
    (k, f) =>
      k.send(new CreateAliasCommand({ AliasName: `alias/${f.keyId}`, TargetKeyId: f.keyId })),
    ["ok", "ok", 3, "ok"],
  ],
  [
    "GetParametersForImport",
    (k, f) =>
      k.send(
        new GetParametersForImportCommand({
          KeyId: f.keyId,
          WrappingAlgorithm: "RSAES_OAEP_SHA_256",
          WrappingKeySpec: "RSA_2048",
        }),
      ),
    ["AWS_KMS", "AWS_KMS", "AWS_KMS", "ok"],
  ],
  [
    "DeleteImportedKeyMaterial",
    (k, f) => k.send(new DeleteImportedKeyMaterialCommand({ KeyId: f.keyId })),
    ["AWS_KMS", "AWS_KMS", "AWS_KMS", "ok"],
  ],
  [
    "DescribeKey",
    (k, f) => k.send(new DescribeKeyCommand({ KeyId: f.keyId })),
    ["ok", "ok", "ok", "ok"],
  ],
  [
    "GetKeyPolicy",
    (k, f) => k.send(new GetKeyPolicyCommand({ KeyId: f.keyId })),
    ["ok", "ok", "ok", "ok"],
  ],
  [
    "PutKeyPolicy",
    async (k, f) => {
      const { Policy } = await k.send(new GetKeyPolicyCommand({ KeyId: f.keyId }));
      return k.send(new PutKeyPolicyCommand({ KeyId: f.keyId, Policy: Policy! }));
    },
    ["ok", "ok", "ok", "ok"],
  ],
  [
    "ListResourceTags",
    (k, f) => k.send(new ListResourceTagsCommand({ KeyId: f.keyId })),
    ["ok", "ok", "ok", "ok"],
  ],
];

let server: LifecycleServer;
let kms: KMSClient;

beforeAll(async () => {
  server = await startAt(newSite(), new ManualClock(new Date("2026-06-01T00:00:00Z")));
  kms = server.client;
});
afterAll(async () => {
  await server?.stop();
});

async function keyIn(state: State): Promise<Fixture> {
  const external = state === "PendingImport";
  const meta = (await kms.send(new CreateKeyCommand(external ? { Origin: "EXTERNAL" } : {})))
    .KeyMetadata!;
  const keyId = meta.KeyId!;
  if (external) {
    const params = await kms.send(
      new GetParametersForImportCommand({
        KeyId: keyId,
        WrappingAlgorithm: "RSAES_OAEP_SHA_256",
        WrappingKeySpec: "RSA_2048",
      }),
    );
    const key = createPublicKey({
      key: Buffer.from(params.PublicKey!),
      format: "der",
      type: "spki",
    });
    await kms.send(
      new ImportKeyMaterialCommand({
        KeyId: keyId,
        ImportToken: params.ImportToken!,
        EncryptedKeyMaterial: publicEncrypt(
          { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
          randomBytes(32),
        ),
        ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
      }),
    );
  }
  const ciphertext = (
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("state table") }))
  ).CiphertextBlob!;
  if (state === "Disabled") await kms.send(new DisableKeyCommand({ KeyId: keyId }));
  if (state === "PendingDeletion") await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId }));
  if (external) await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
  const described = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
  expect(described.KeyState).toBe(state);
  return { keyId, arn: meta.Arn!, ciphertext };
}

const cases = TABLE.flatMap(([operation, call, outcomes]) =>
  STATES.map((state, i) => ({ operation, state, call, outcome: outcomes[i]! })),
);

describe("key-state table", () => {
  it.each(cases)("$operation on a $state key → $outcome", async ({ state, call, outcome }) => {
    const fixture = await keyIn(state);
    if (outcome === "ok") {
      await call(kms, fixture);
    } else {
      expect(await failure(call(kms, fixture))).toMatchObject(footnote(fixture.arn, outcome));
    }
  });
});
