/**
 * Every operation of issue 2 through @aws-sdk/client-kms against the real `keyhaven serve`
 * program on loopback, with the exact AWS exception names and HTTP statuses of their errors.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  ListAliasesCommand,
  ListKeyPoliciesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
  type KMSClient,
  type KeyMetadata,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { kmsClient, signedFetch, spawnServer, type SpawnedServer } from "./support/server.js";

let server: SpawnedServer;
let kms: KMSClient;
const ARN_PREFIX = "arn:aws:kms:us-east-1:000000000000:key/";
const KEY_ARN =
  /^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let unique = 0;
const aliasName = (what: string) => `alias/sdk-${what}-${Date.now().toString(36)}-${unique++}`;

beforeAll(async () => {
  server = await spawnServer();
  kms = kmsClient(server);
});

afterAll(async () => {
  kms?.destroy();
  expect(await server?.stop()).toBe(0);
});

async function newKey(description = "test key"): Promise<KeyMetadata> {
  const out = await kms.send(new CreateKeyCommand({ Description: description }));
  return out.KeyMetadata!;
}

const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString("utf8");

describe("CreateKey and DescribeKey", () => {
  it("creates an enabled AES-256-GCM symmetric key with AWS's metadata", async () => {
    const before = Date.now();
    const out = await kms.send(
      new CreateKeyCommand({ Description: "orders", Tags: [{ TagKey: "team", TagValue: "a" }] }),
    );
    const m = out.KeyMetadata!;
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(m.Arn).toMatch(KEY_ARN);
    expect(m.Arn).toBe(`${ARN_PREFIX}${m.KeyId}`);
    expect(m).toMatchObject({
      AWSAccountId: "000000000000",
      Description: "orders",
      Enabled: true,
      KeyState: "Enabled",
      KeySpec: "SYMMETRIC_DEFAULT",
      CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
      KeyUsage: "ENCRYPT_DECRYPT",
      Origin: "AWS_KMS",
      KeyManager: "CUSTOMER",
      EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
      MultiRegion: false,
    });
    expect(m.CreationDate!.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(m.CreationDate!.getTime()).toBeLessThanOrEqual(Date.now());
    const tags = await kms.send(new ListResourceTagsCommand({ KeyId: m.KeyId }));
    expect(tags.Tags).toEqual([{ TagKey: "team", TagValue: "a" }]);
  });

  it("describes a key by key id, key ARN, alias name and alias ARN", async () => {
    const key = await newKey();
    const alias = aliasName("describe");
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    const aliasArn = `arn:aws:kms:us-east-1:000000000000:${alias}`;
    for (const id of [key.KeyId!, key.Arn!, alias, aliasArn]) {
      const out = await kms.send(new DescribeKeyCommand({ KeyId: id }));
      expect(out.KeyMetadata?.KeyId).toBe(key.KeyId);
      expect(out.KeyMetadata?.Arn).toBe(key.Arn);
    }
  });

  it("answers NotFoundException (404) for unknown ids, aliases and other regions' ARNs", async () => {
    const missing = "11111111-2222-3333-4444-555555555555";
    expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: missing })))).toEqual({
      name: "NotFoundException",
      status: 404,
      message: `Key '${ARN_PREFIX}${missing}' does not exist`,
    });
    expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: "alias/nope" })))).toEqual({
      name: "NotFoundException",
      status: 404,
      message: "Alias arn:aws:kms:us-east-1:000000000000:alias/nope is not found.",
    });
    const key = await newKey();
    const foreign = key.Arn!.replace("us-east-1", "eu-west-1");
    expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: foreign })))).toEqual({
      name: "NotFoundException",
      status: 404,
      message: "Invalid arn eu-west-1",
    });
    expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: "fake-key-id" })))).toEqual({
      name: "NotFoundException",
      status: 404,
      message: "Invalid keyId 'fake-key-id'",
    });
  });

  it("rejects a tag with the aws: prefix and a malformed policy", async () => {
    const tag = await failure(
      kms.send(new CreateKeyCommand({ Tags: [{ TagKey: "aws:x", TagValue: "y" }] })),
    );
    expect(tag).toMatchObject({ name: "TagException", status: 400 });
    const policy = await failure(kms.send(new CreateKeyCommand({ Policy: "{not json" })));
    expect(policy).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
  });
});

describe("ListKeys", () => {
  it("pages through every key with Limit and Marker, each key exactly once", async () => {
    const created = new Set<string>();
    for (let i = 0; i < 5; i++) created.add((await newKey()).KeyId!);
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await kms.send(
        new ListKeysCommand({ Limit: 2, ...(marker !== undefined && { Marker: marker }) }),
      );
      pages++;
      expect(page.Keys!.length).toBeLessThanOrEqual(2);
      for (const k of page.Keys!) {
        expect(k.KeyArn).toBe(`${ARN_PREFIX}${k.KeyId}`);
        seen.push(k.KeyId!);
      }
      expect(page.Truncated).toBe(page.NextMarker !== undefined);
      marker = page.NextMarker;
    } while (marker !== undefined);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of created) expect(seen).toContain(id);
    expect(pages).toBeGreaterThanOrEqual(3);
    const all = await kms.send(new ListKeysCommand({}));
    expect(new Set(all.Keys!.map((k) => k.KeyId))).toEqual(new Set(seen));
  });

  it("rejects Limit outside 1..1000 and a forged Marker", async () => {
    const zero = await failure(kms.send(new ListKeysCommand({ Limit: 0 })));
    expect(zero).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
    expect(await failure(kms.send(new ListKeysCommand({ Limit: 1001 })))).toMatchObject({
      name: "ValidationException",
    });
    expect(await failure(kms.send(new ListKeysCommand({ Marker: "not a marker!" })))).toMatchObject(
      { name: "InvalidMarkerException", status: 400 },
    );
  });
});

describe("UpdateKeyDescription, EnableKey, DisableKey", () => {
  it("updates the description", async () => {
    const key = await newKey("old");
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.Arn, Description: "new" }));
    const out = await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    expect(out.KeyMetadata?.Description).toBe("new");
  });

  it("management operations take a key id or ARN, not an alias", async () => {
    const key = await newKey();
    const alias = aliasName("mgmt");
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    const err = await failure(
      kms.send(new UpdateKeyDescriptionCommand({ KeyId: alias, Description: "x" })),
    );
    expect(err).toMatchObject({ name: "NotFoundException", status: 404 });
  });

  it("a disabled key refuses every cryptographic operation with DisabledException (409)", async () => {
    const key = await newKey();
    const enc = await kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("before") }),
    );
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const described = await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    expect(described.KeyMetadata).toMatchObject({ KeyState: "Disabled", Enabled: false });

    const disabled = { name: "DisabledException", status: 409, message: `${key.Arn} is disabled.` };
    expect(
      await failure(
        kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("x") })),
      ),
    ).toEqual(disabled);
    expect(
      await failure(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))),
    ).toEqual(disabled);
    expect(
      await failure(kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }))),
    ).toEqual(disabled);
    expect(
      await failure(
        kms.send(
          new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId, NumberOfBytes: 16 }),
        ),
      ),
    ).toEqual(disabled);
    const other = await newKey();
    expect(
      await failure(
        kms.send(
          new ReEncryptCommand({
            CiphertextBlob: enc.CiphertextBlob,
            DestinationKeyId: other.KeyId,
          }),
        ),
      ),
    ).toEqual(disabled);

    await kms.send(new EnableKeyCommand({ KeyId: key.Arn }));
    const again = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
    expect(text(again.Plaintext)).toBe("before");
  });

  it("EnableKey on an unknown key is NotFoundException", async () => {
    const err = await failure(
      kms.send(new EnableKeyCommand({ KeyId: "00000000-0000-0000-0000-000000000000" })),
    );
    expect(err).toMatchObject({ name: "NotFoundException", status: 404 });
  });
});

describe("Encrypt and Decrypt", () => {
  it("round-trips with an encryption context; responses name the key by ARN", async () => {
    const key = await newKey();
    const alias = aliasName("enc");
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    const context = { tenant: "acme", purpose: "test" };
    for (const id of [key.KeyId!, key.Arn!, alias]) {
      const enc = await kms.send(
        new EncryptCommand({
          KeyId: id,
          Plaintext: Buffer.from("secret value"),
          EncryptionContext: context,
        }),
      );
      expect(enc.KeyId).toBe(key.Arn);
      expect(enc.EncryptionAlgorithm).toBe("SYMMETRIC_DEFAULT");
      // Decrypt without KeyId finds the key from the blob; the pairs' order may vary.
      const dec = await kms.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: { purpose: "test", tenant: "acme" },
        }),
      );
      expect(dec.KeyId).toBe(key.Arn);
      expect(dec.EncryptionAlgorithm).toBe("SYMMETRIC_DEFAULT");
      expect(text(dec.Plaintext)).toBe("secret value");
      const named = await kms.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: context,
          KeyId: id,
        }),
      );
      expect(text(named.Plaintext)).toBe("secret value");
    }
  });

  it("each encryption uses a fresh IV", async () => {
    const key = await newKey();
    const a = await kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("same") }),
    );
    const b = await kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("same") }),
    );
    expect(Buffer.from(a.CiphertextBlob!).equals(Buffer.from(b.CiphertextBlob!))).toBe(false);
  });

  it("a different, missing or regrouped context is InvalidCiphertextException with an empty message", async () => {
    const key = await newKey();
    const enc = await kms.send(
      new EncryptCommand({
        KeyId: key.KeyId,
        Plaintext: Buffer.from("x"),
        EncryptionContext: { ab: "c" },
      }),
    );
    const invalid = { name: "InvalidCiphertextException", status: 400 };
    for (const EncryptionContext of [
      { a: "bc" },
      { ab: "C" },
      { AB: "c" },
      { ab: "c", d: "e" },
      {},
    ]) {
      expect(
        await failure(
          kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext })),
        ),
      ).toMatchObject(invalid);
    }
    expect(
      await failure(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))),
    ).toMatchObject(invalid);
  });

  it("refuses a context with a lone surrogate, which would read the same as U+FFFD", async () => {
    const key = await newKey();
    const err = await failure(
      kms.send(
        new EncryptCommand({
          KeyId: key.KeyId,
          Plaintext: Buffer.from("x"),
          EncryptionContext: { k: "\ud800" },
        }),
      ),
    );
    expect(err).toMatchObject({ name: "SerializationException", status: 400 });
  });

  it("Decrypt naming another key is IncorrectKeyException", async () => {
    const a = await newKey();
    const b = await newKey();
    const enc = await kms.send(new EncryptCommand({ KeyId: a.KeyId, Plaintext: Buffer.from("x") }));
    expect(
      await failure(
        kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: b.Arn })),
      ),
    ).toEqual({
      name: "IncorrectKeyException",
      status: 400,
      message: "The key ID in the request does not identify a CMK that can perform this operation.",
    });
  });

  it("garbage and truncated blobs are InvalidCiphertextException", async () => {
    const key = await newKey();
    const enc = await kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("x") }),
    );
    const blob = Buffer.from(enc.CiphertextBlob!);
    for (const bad of [
      Buffer.from("garbage"),
      blob.subarray(0, blob.length - 1),
      blob.subarray(0, 30),
    ]) {
      expect(await failure(kms.send(new DecryptCommand({ CiphertextBlob: bad })))).toMatchObject({
        name: "InvalidCiphertextException",
        status: 400,
      });
    }
  });

  it("accepts 1..4096 bytes of plaintext and rejects 0 and 4097", async () => {
    const key = await newKey();
    for (const size of [1, 4096]) {
      const plaintext = Buffer.alloc(size, 7);
      const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).equals(plaintext)).toBe(true);
    }
    expect(
      await failure(
        kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.alloc(4097, 1) })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    });
    expect(
      await failure(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.alloc(0) }))),
    ).toMatchObject({ name: "ValidationException", status: 400 });
  });
});

describe("ReEncrypt", () => {
  it("moves a ciphertext to another key and context", async () => {
    const a = await newKey();
    const b = await newKey();
    const enc = await kms.send(
      new EncryptCommand({
        KeyId: a.KeyId,
        Plaintext: Buffer.from("moving"),
        EncryptionContext: { v: "1" },
      }),
    );
    const re = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        SourceEncryptionContext: { v: "1" },
        DestinationKeyId: b.KeyId,
        DestinationEncryptionContext: { v: "2" },
      }),
    );
    expect(re).toMatchObject({
      SourceKeyId: a.Arn,
      KeyId: b.Arn,
      SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    });
    const dec = await kms.send(
      new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { v: "2" } }),
    );
    expect(dec.KeyId).toBe(b.Arn);
    expect(text(dec.Plaintext)).toBe("moving");
    expect(
      await failure(
        kms.send(
          new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: b.KeyId }),
        ),
      ),
    ).toMatchObject({ name: "InvalidCiphertextException" });
    expect(
      await failure(
        kms.send(
          new ReEncryptCommand({
            CiphertextBlob: enc.CiphertextBlob,
            SourceEncryptionContext: { v: "1" },
            SourceKeyId: b.KeyId,
            DestinationKeyId: b.KeyId,
          }),
        ),
      ),
    ).toMatchObject({ name: "IncorrectKeyException" });
  });
});

describe("GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom", () => {
  it("returns data keys of the requested size whose ciphertext decrypts to them", async () => {
    const key = await newKey();
    for (const [params, size] of [
      [{ KeySpec: "AES_256" as const }, 32],
      [{ KeySpec: "AES_128" as const }, 16],
      [{ NumberOfBytes: 1 }, 1],
      [{ NumberOfBytes: 1024 }, 1024],
    ] as const) {
      const dk = await kms.send(
        new GenerateDataKeyCommand({ KeyId: key.KeyId, EncryptionContext: { k: "v" }, ...params }),
      );
      expect(dk.KeyId).toBe(key.Arn);
      expect(dk.Plaintext?.length).toBe(size);
      const dec = await kms.send(
        new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { k: "v" } }),
      );
      expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(dk.Plaintext!))).toBe(true);
    }
    const without = await kms.send(
      new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.Arn, KeySpec: "AES_256" }),
    );
    expect(without.KeyId).toBe(key.Arn);
    expect(without).not.toHaveProperty("Plaintext");
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: without.CiphertextBlob }));
    expect(dec.Plaintext?.length).toBe(32);
  });

  it("needs exactly one of KeySpec and NumberOfBytes, within 1..1024", async () => {
    const key = await newKey();
    const validation = { name: "ValidationException", status: 400 };
    for (const command of [
      new GenerateDataKeyCommand({ KeyId: key.KeyId }),
      new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256", NumberOfBytes: 32 }),
      new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId }),
    ]) {
      expect(await failure(kms.send(command))).toMatchObject(validation);
    }
    expect(
      await failure(
        kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 1025 })),
      ),
    ).toEqual({
      ...validation,
      message:
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    });
    expect(
      await failure(kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 0 }))),
    ).toEqual({
      ...validation,
      message:
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
  });

  it("GenerateRandom returns 1..1024 random bytes and rejects 0 and 1025", async () => {
    const one = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 1 }));
    expect(one.Plaintext?.length).toBe(1);
    const a = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    const b = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    expect(a.Plaintext?.length).toBe(1024);
    expect(Buffer.from(a.Plaintext!).equals(Buffer.from(b.Plaintext!))).toBe(false);
    expect(await failure(kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })))).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
    expect(await failure(kms.send(new GenerateRandomCommand({ NumberOfBytes: 1025 })))).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    });
    expect(await failure(kms.send(new GenerateRandomCommand({})))).toMatchObject({
      name: "ValidationException",
      status: 400,
    });
  });
});

describe("aliases", () => {
  it("creates, lists, retargets and deletes an alias", async () => {
    const a = await newKey();
    const b = await newKey();
    const alias = aliasName("life");
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: a.Arn }));
    const listed = await kms.send(new ListAliasesCommand({ KeyId: a.KeyId }));
    expect(listed.Aliases).toHaveLength(1);
    expect(listed.Aliases![0]).toMatchObject({
      AliasName: alias,
      AliasArn: `arn:aws:kms:us-east-1:000000000000:${alias}`,
      TargetKeyId: a.KeyId,
    });
    expect(listed.Aliases![0]!.CreationDate).toBeInstanceOf(Date);

    await kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: b.KeyId }));
    const enc = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: Buffer.from("x") }));
    expect(enc.KeyId).toBe(b.Arn);
    expect((await kms.send(new ListAliasesCommand({ KeyId: a.KeyId }))).Aliases).toEqual([]);

    await kms.send(new DeleteAliasCommand({ AliasName: alias }));
    const gone = {
      name: "NotFoundException",
      status: 404,
      message: `Alias arn:aws:kms:us-east-1:000000000000:${alias} is not found.`,
    };
    expect(await failure(kms.send(new DescribeKeyCommand({ KeyId: alias })))).toEqual(gone);
    expect(await failure(kms.send(new DeleteAliasCommand({ AliasName: alias })))).toEqual(gone);
    expect(
      await failure(kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: a.KeyId }))),
    ).toEqual(gone);
  });

  it("pages ListAliases with Limit and Marker", async () => {
    const key = await newKey();
    const names = [aliasName("p"), aliasName("p"), aliasName("p")];
    for (const n of names)
      await kms.send(new CreateAliasCommand({ AliasName: n, TargetKeyId: key.KeyId }));
    const seen: string[] = [];
    let marker: string | undefined;
    do {
      const page = await kms.send(
        new ListAliasesCommand({
          KeyId: key.KeyId,
          Limit: 2,
          ...(marker !== undefined && { Marker: marker }),
        }),
      );
      seen.push(...page.Aliases!.map((a) => a.AliasName!));
      marker = page.NextMarker;
    } while (marker !== undefined);
    expect(seen).toEqual([...names].sort());
  });

  it("enforces AWS's alias rules", async () => {
    const key = await newKey();
    const alias = aliasName("dup");
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    expect(
      await failure(kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }))),
    ).toEqual({
      name: "AlreadyExistsException",
      status: 409,
      message: `An alias with the name arn:aws:kms:us-east-1:000000000000:${alias} already exists`,
    });
    expect(
      await failure(
        kms.send(new CreateAliasCommand({ AliasName: "noprefix", TargetKeyId: key.KeyId })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    });
    expect(
      await failure(
        kms.send(new CreateAliasCommand({ AliasName: "alias/aws/s3", TargetKeyId: key.KeyId })),
      ),
      // AWS sends no message here; the SDK then reports "UnknownError".
    ).toEqual({ name: "NotAuthorizedException", status: 400, message: "UnknownError" });
    expect(
      await failure(
        kms.send(new CreateAliasCommand({ AliasName: "alias/my:alias", TargetKeyId: key.KeyId })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message: "alias/my:alias contains invalid characters for an alias",
    });
    expect(
      await failure(
        kms.send(new CreateAliasCommand({ AliasName: "alias/bad name!", TargetKeyId: key.KeyId })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value 'alias/bad name!' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    });
    expect(
      await failure(
        kms.send(new CreateAliasCommand({ AliasName: aliasName("x"), TargetKeyId: alias })),
      ),
    ).toMatchObject({
      name: "ValidationException",
      message: "Aliases must refer to keys. Not aliases",
    });
    expect(
      await failure(
        kms.send(
          new CreateAliasCommand({
            AliasName: aliasName("x"),
            TargetKeyId: "99999999-9999-9999-9999-999999999999",
          }),
        ),
      ),
    ).toMatchObject({ name: "NotFoundException", status: 404 });
  });
});

describe("tags", () => {
  it("tags, retags, lists (paged) and untags a key", async () => {
    const key = await newKey();
    await kms.send(
      new TagResourceCommand({
        KeyId: key.Arn,
        Tags: [
          { TagKey: "a", TagValue: "1" },
          { TagKey: "b", TagValue: "2" },
        ],
      }),
    );
    await kms.send(
      new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: "a", TagValue: "3" }] }),
    );
    const all = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }));
    expect(all.Tags).toEqual([
      { TagKey: "a", TagValue: "3" },
      { TagKey: "b", TagValue: "2" },
    ]);
    expect(all.Truncated).toBe(false);
    const first = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 1 }));
    expect(first).toMatchObject({ Tags: [{ TagKey: "a", TagValue: "3" }], Truncated: true });
    const second = await kms.send(
      new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 1, Marker: first.NextMarker }),
    );
    expect(second).toMatchObject({ Tags: [{ TagKey: "b", TagValue: "2" }], Truncated: false });

    await kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ["a", "absent"] }));
    const left = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }));
    expect(left.Tags).toEqual([{ TagKey: "b", TagValue: "2" }]);
  });

  it("enforces AWS's tag rules with TagException", async () => {
    const key = await newKey();
    const tag = (k: string) => ({ TagKey: k, TagValue: "v" });
    expect(
      await failure(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [tag("aws:x")] }))),
    ).toEqual({
      name: "TagException",
      status: 400,
      message: "Tags beginning with aws: are reserved",
    });
    expect(
      await failure(
        kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [tag("d"), tag("d")] })),
      ),
    ).toEqual({ name: "TagException", status: 400, message: "Duplicate tag keys" });
    const fifty = Array.from({ length: 50 }, (_, i) => tag(`t${i}`));
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: fifty }));
    expect(
      await failure(
        kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [tag("one-more")] })),
      ),
    ).toMatchObject({ name: "TagException", status: 400 });
    const listed = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }));
    expect(listed.Tags).toHaveLength(50);
  });
});

describe("key policies", () => {
  it("returns the default policy, stores a new one and lists 'default'", async () => {
    const key = await newKey();
    const initial = await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }));
    expect(initial.PolicyName).toBe("default");
    const document = JSON.parse(initial.Policy!) as { Statement: { Principal: unknown }[] };
    expect(document.Statement[0]!.Principal).toEqual({ AWS: "arn:aws:iam::000000000000:root" });

    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: "*" }, Action: "kms:*", Resource: "*" }],
    });
    await kms.send(new PutKeyPolicyCommand({ KeyId: key.Arn, Policy: policy }));
    const stored = await kms.send(
      new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: "default" }),
    );
    expect(stored.Policy).toBe(policy);
    const names = await kms.send(new ListKeyPoliciesCommand({ KeyId: key.KeyId }));
    expect(names).toMatchObject({ PolicyNames: ["default"], Truncated: false });

    expect(
      await failure(kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: "[]" }))),
    ).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
    expect(
      await failure(kms.send(new GetKeyPolicyCommand({ KeyId: "alias/whatever" }))),
    ).toMatchObject({ name: "NotFoundException", status: 404 });
  });
});

describe("the protocol", () => {
  it("answers an unknown operation with UnknownOperationException", async () => {
    const res = await signedFetch(server, { target: "Frobnicate", body: "{}" });
    expect(res.status).toBe(400);
    expect(res.json?.__type).toBe("UnknownOperationException");
  });

  it("answers malformed JSON and wrong JSON types with SerializationException", async () => {
    for (const body of ['{"KeyId": ', '{"NumberOfBytes": "12"}', "[1,2]"]) {
      const res = await signedFetch(server, { target: "GenerateRandom", body });
      expect(res.status).toBe(400);
      expect(res.json?.__type).toBe("SerializationException");
    }
    const blob = await signedFetch(server, {
      target: "Decrypt",
      body: JSON.stringify({ CiphertextBlob: "not base64!" }),
    });
    expect(blob.json?.__type).toBe("SerializationException");
  });

  it("answers an unsigned request with MissingAuthenticationTokenException (403)", async () => {
    const res = await signedFetch(server, { target: "ListKeys", body: "{}", unsigned: true });
    expect(res.status).toBe(403);
    expect(res.json?.__type).toBe("MissingAuthenticationTokenException");
  });

  it("answers a wrong secret with InvalidSignatureException and an unknown key id with UnrecognizedClientException", async () => {
    const wrongSecret = kmsClient({
      ...server,
      credentials: { ...server.credentials, secretAccessKey: "not-the-secret-at-all" },
    });
    expect(await failure(wrongSecret.send(new ListKeysCommand({})))).toMatchObject({
      name: "InvalidSignatureException",
      status: 400,
    });
    wrongSecret.destroy();
    const stranger = kmsClient({
      ...server,
      credentials: { ...server.credentials, accessKeyId: "AKIANOBODYKNOWSME000" },
    });
    expect(await failure(stranger.send(new ListKeysCommand({})))).toMatchObject({
      name: "UnrecognizedClientException",
      status: 400,
    });
    stranger.destroy();
  });

  it("refuses requests signed for another region", async () => {
    const elsewhere = kmsClient({ ...server, region: "eu-west-1" });
    expect(await failure(elsewhere.send(new ListKeysCommand({})))).toMatchObject({
      name: "InvalidSignatureException",
      status: 400,
    });
    elsewhere.destroy();
  });

  it("serves /healthz and /readyz", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
