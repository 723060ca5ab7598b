/**
 * Access control end to end: key policies, caller policies, grants and ABAC through the
 * real key service, driven by the AWS SDK, the AWS CLI and boto3; and the audit records.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  KMSServiceException,
  ListGrantsCommand,
  ListRetirableGrantsCommand,
  PutKeyPolicyCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
  TagResourceCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  auditRecords,
  ADMINISTRATOR,
  startWithPrincipals,
  type AccessControlServer,
} from "./support/accessControl.js";
import { clientEnv, runCli } from "./support/clients.js";
import { kmsClient } from "./support/server.js";

const ACCOUNT = "000000000000";
const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
const CAROL = `arn:aws:iam::${ACCOUNT}:user/carol`;
const RETIRER = `arn:aws:iam::${ACCOUNT}:user/retirer`;

async function failure(
  p: Promise<unknown>,
): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KMSServiceException)
      return { name: err.name, message: err.message, status: err.$metadata.httpStatusCode };
    throw err;
  }
  throw new Error("the call succeeded");
}

let server: AccessControlServer;
let admin: KMSClient;
let alice: KMSClient;
let bob: KMSClient;
let carol: KMSClient;
let retirer: KMSClient;
let keyArn: string;

beforeAll(async () => {
  server = await startWithPrincipals({
    principals: {
      admin: { principal: `arn:aws:iam::${ACCOUNT}:user/admin`, policies: [ADMINISTRATOR] },
      alice: { principal: ALICE, policies: [] },
      bob: { principal: BOB, policies: [] },
      retirer: { principal: RETIRER, policies: [] },
      carol: {
        principal: CAROL,
        tags: { team: "payments" },
        policies: [
          {
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "UseKeysOfMyTeam",
                Effect: "Allow",
                Action: ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
                Resource: "arn:aws:kms:*:000000000000:key/*",
                Condition: {
                  StringEquals: { "aws:ResourceTag/team": "${aws:PrincipalTag/team}" },
                },
              },
            ],
          },
        ],
      },
    },
  });
  admin = kmsClient(server.handle("admin"));
  alice = kmsClient(server.handle("alice"));
  bob = kmsClient(server.handle("bob"));
  carol = kmsClient(server.handle("carol"));
  retirer = kmsClient(server.handle("retirer"));
  keyArn = (await admin.send(new CreateKeyCommand({ Description: "shared" }))).KeyMetadata!.Arn!;
  await admin.send(
    new CreateAliasCommand({ AliasName: "alias/authz-shared", TargetKeyId: keyArn }),
  );
});

afterAll(async () => {
  for (const c of [admin, alice, bob, carol, retirer]) c?.destroy();
  await server?.stop();
});

describe("an unauthorized principal is refused", () => {
  it("by the SDK, with AWS's AccessDeniedException message shape", async () => {
    const err = await failure(
      alice.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from("x") })),
    );
    expect(err.name).toBe("AccessDeniedException");
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      `User: ${ALICE} is not authorized to perform: kms:Encrypt on resource: ${keyArn} because no identity-based policy allows the kms:Encrypt action`,
    );
    const create = await failure(alice.send(new CreateKeyCommand({})));
    expect(create.name).toBe("AccessDeniedException");
    expect(create.message).toContain("kms:CreateKey");
    // The administrator (no `policies` in the credentials file) may.
    const ok = await admin.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from("x") }));
    expect(ok.KeyId).toBe(keyArn);
  });

  it("by the AWS CLI", async () => {
    const r = await runCli(server.handle("alice"), [
      "kms",
      "encrypt",
      "--key-id",
      "alias/authz-shared",
      "--plaintext",
      "aGVsbG8=",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("AccessDeniedException");
    expect(r.stderr).toContain(`User: ${ALICE} is not authorized to perform: kms:Encrypt`);
    const ok = await runCli(server.handle("admin"), [
      "kms",
      "encrypt",
      "--key-id",
      "alias/authz-shared",
      "--plaintext",
      "aGVsbG8=",
    ]);
    expect(ok.code).toBe(0);
  });

  it("by boto3", async () => {
    const script = [
      "import json, boto3",
      "from botocore.exceptions import ClientError",
      "kms = boto3.client('kms')",
      "try:",
      "    kms.encrypt(KeyId='alias/authz-shared', Plaintext=b'hi')",
      "    print(json.dumps({'code': None}))",
      "except ClientError as e:",
      "    print(json.dumps({'code': e.response['Error']['Code'], 'message': e.response['Error']['Message'], 'status': e.response['ResponseMetadata']['HTTPStatusCode']}))",
    ].join("\n");
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "python3",
        ["-c", script],
        { env: clientEnv(server.handle("alice")), timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    const result = JSON.parse(out) as { code: string; message: string; status: number };
    expect(result.code).toBe("AccessDeniedException");
    expect(result.status).toBe(400);
    expect(result.message).toContain(`User: ${ALICE} is not authorized to perform: kms:Encrypt`);
  });
});

describe("grants", () => {
  it("a grant with its token works at once, within its operations and constraints only", async () => {
    const created = await admin.send(
      new CreateGrantCommand({
        KeyId: keyArn,
        GranteePrincipal: BOB,
        RetiringPrincipal: RETIRER,
        Operations: ["Encrypt", "Decrypt"],
        Constraints: { EncryptionContextSubset: { tenant: "a" } },
        Name: "bob-tenant-a",
      }),
    );
    expect(created.GrantId).toMatch(/^[0-9a-f]{64}$/);
    const GrantTokens = [created.GrantToken!];
    const enc = await bob.send(
      new EncryptCommand({
        KeyId: keyArn,
        Plaintext: Buffer.from("for tenant a"),
        EncryptionContext: { tenant: "a", extra: "ok" },
        GrantTokens,
      }),
    );
    const dec = await bob.send(
      new DecryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        EncryptionContext: { tenant: "a", extra: "ok" },
        GrantTokens,
      }),
    );
    expect(Buffer.from(dec.Plaintext!).toString()).toBe("for tenant a");
    // Key case-insensitive, value case-sensitive (AWS's grant-constraint rule).
    await bob.send(
      new EncryptCommand({
        KeyId: keyArn,
        Plaintext: Buffer.from("x"),
        EncryptionContext: { TENANT: "a" },
      }),
    );
    for (const ec of [{ tenant: "b" }, { tenant: "A" }, undefined]) {
      const err = await failure(
        bob.send(
          new EncryptCommand({
            KeyId: keyArn,
            Plaintext: Buffer.from("x"),
            ...(ec && { EncryptionContext: ec }),
          }),
        ),
      );
      expect(err.name).toBe("AccessDeniedException");
    }
    // Operations outside the grant: refused.
    expect((await failure(bob.send(new DescribeKeyCommand({ KeyId: keyArn })))).name).toBe(
      "AccessDeniedException",
    );
    expect(
      (
        await failure(
          bob.send(
            new GenerateDataKeyCommand({
              KeyId: keyArn,
              KeySpec: "AES_256",
              EncryptionContext: { tenant: "a" },
            }),
          ),
        )
      ).name,
    ).toBe("AccessDeniedException");

    // Name idempotency: same parameters → same grant, a fresh token.
    const again = await admin.send(
      new CreateGrantCommand({
        KeyId: keyArn,
        GranteePrincipal: BOB,
        RetiringPrincipal: RETIRER,
        Operations: ["Decrypt", "Encrypt"],
        Constraints: { EncryptionContextSubset: { tenant: "a" } },
        Name: "bob-tenant-a",
      }),
    );
    expect(again.GrantId).toBe(created.GrantId);
    expect(again.GrantToken).not.toBe(created.GrantToken);

    const listed = await admin.send(new ListGrantsCommand({ KeyId: keyArn }));
    expect(listed.Grants).toHaveLength(1);
    expect(listed.Grants![0]).toMatchObject({
      KeyId: keyArn,
      GrantId: created.GrantId,
      Name: "bob-tenant-a",
      GranteePrincipal: BOB,
      RetiringPrincipal: RETIRER,
      IssuingAccount: `arn:aws:iam::${ACCOUNT}:root`,
      Constraints: { EncryptionContextSubset: { tenant: "a" } },
    });
    expect(new Set(listed.Grants![0]!.Operations)).toEqual(new Set(["Encrypt", "Decrypt"]));
    const retirable = await admin.send(
      new ListRetirableGrantsCommand({ RetiringPrincipal: RETIRER }),
    );
    expect(retirable.Grants!.map((g) => g.GrantId)).toEqual([created.GrantId]);

    // Only the retiring principal (or a grantee with RetireGrant) may retire it.
    expect(
      (await failure(bob.send(new RetireGrantCommand({ GrantToken: created.GrantToken })))).name,
    ).toBe("AccessDeniedException");
    await retirer.send(new RetireGrantCommand({ KeyId: keyArn, GrantId: created.GrantId }));
    expect(
      (
        await failure(
          bob.send(
            new EncryptCommand({
              KeyId: keyArn,
              Plaintext: Buffer.from("x"),
              EncryptionContext: { tenant: "a" },
            }),
          ),
        )
      ).name,
    ).toBe("AccessDeniedException");
    expect((await admin.send(new ListGrantsCommand({ KeyId: keyArn }))).Grants).toEqual([]);
  });

  it("rejects bad tokens, bad operations and revokes", async () => {
    expect(
      (
        await failure(
          admin.send(
            new EncryptCommand({
              KeyId: keyArn,
              Plaintext: Buffer.from("x"),
              GrantTokens: ["nonsense"],
            }),
          ),
        )
      ).name,
    ).toBe("InvalidGrantTokenException");
    const bad = await failure(
      admin.send(
        new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: BOB, Operations: ["Sign"] }),
      ),
    );
    expect(bad.name).toBe("ValidationException");
    expect(bad.message).toContain("Sign");
    // Alice may not create grants for herself.
    expect(
      (
        await failure(
          alice.send(
            new CreateGrantCommand({
              KeyId: keyArn,
              GranteePrincipal: ALICE,
              Operations: ["Decrypt"],
            }),
          ),
        )
      ).name,
    ).toBe("AccessDeniedException");

    const g = await admin.send(
      new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: BOB, Operations: ["DescribeKey"] }),
    );
    await bob.send(new DescribeKeyCommand({ KeyId: keyArn, GrantTokens: [g.GrantToken!] }));
    await admin.send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: g.GrantId }));
    expect((await failure(bob.send(new DescribeKeyCommand({ KeyId: keyArn })))).name).toBe(
      "AccessDeniedException",
    );
    expect(
      (await failure(admin.send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: g.GrantId }))))
        .name,
    ).toBe("NotFoundException");
  });

  it("a grant with CreateGrant lets the grantee create only narrower grants", async () => {
    const parent = await admin.send(
      new CreateGrantCommand({
        KeyId: keyArn,
        GranteePrincipal: BOB,
        Operations: ["Decrypt", "CreateGrant"],
        Constraints: { EncryptionContextSubset: { tenant: "a" } },
      }),
    );
    const child = await bob.send(
      new CreateGrantCommand({
        KeyId: keyArn,
        GranteePrincipal: ALICE,
        Operations: ["Decrypt"],
        Constraints: { EncryptionContextEquals: { tenant: "a", doc: "1" } },
        GrantTokens: [parent.GrantToken!],
      }),
    );
    expect(child.GrantId).toMatch(/^[0-9a-f]{64}$/);
    for (const wider of [
      {
        Operations: ["Encrypt" as const],
        Constraints: { EncryptionContextSubset: { tenant: "a" } },
      },
      { Operations: ["Decrypt" as const] },
      { Operations: ["Decrypt" as const], Constraints: { EncryptionContextSubset: { doc: "1" } } },
    ]) {
      expect(
        (
          await failure(
            bob.send(new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: ALICE, ...wider })),
          )
        ).name,
      ).toBe("AccessDeniedException");
    }
    await admin.send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: parent.GrantId }));
    await admin.send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: child.GrantId }));
  });
});

describe("key policies", () => {
  it("PutKeyPolicy refuses a policy that locks the caller out, unless bypassed", async () => {
    const key = (await admin.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    const onlyAlice = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: ALICE }, Action: "kms:*", Resource: "*" }],
    });
    const err = await failure(
      admin.send(new PutKeyPolicyCommand({ KeyId: key, Policy: onlyAlice })),
    );
    expect(err).toMatchObject({
      name: "MalformedPolicyDocumentException",
      message: "The new key policy will not allow you to update the key policy in the future.",
    });
    const malformed = await failure(
      admin.send(
        new PutKeyPolicyCommand({ KeyId: key, Policy: '{"Statement":[{"Effect":"Allow"}]}' }),
      ),
    );
    expect(malformed.name).toBe("MalformedPolicyDocumentException");
    expect(malformed.message).toBe("Statement 1 must have Action or NotAction.");

    await admin.send(
      new PutKeyPolicyCommand({
        KeyId: key,
        Policy: onlyAlice,
        BypassPolicyLockoutSafetyCheck: true,
      }),
    );
    // Now Alice (no caller policies) is allowed by the key policy itself; the admin is out.
    expect((await alice.send(new GetKeyPolicyCommand({ KeyId: key }))).Policy).toBe(onlyAlice);
    await alice.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("x") }));
    expect((await failure(admin.send(new DescribeKeyCommand({ KeyId: key })))).message).toBe(
      `User: arn:aws:iam::${ACCOUNT}:user/admin is not authorized to perform: kms:DescribeKey on resource: ${key} because no resource-based policy allows the kms:DescribeKey action`,
    );
  });

  it("an explicit Deny in the key policy wins over the administrator's kms:*", async () => {
    const key = (
      await admin.send(
        new CreateKeyCommand({
          Policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "Enable IAM policies",
                Effect: "Allow",
                Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
                Action: "kms:*",
                Resource: "*",
              },
              {
                Sid: "NoDecryptWithoutContext",
                Effect: "Deny",
                Principal: "*",
                Action: "kms:Decrypt",
                Resource: "*",
                Condition: { Null: { "kms:EncryptionContext:purpose": "true" } },
              },
            ],
          }),
        }),
      )
    ).KeyMetadata!.Arn!;
    const plain = await admin.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("x") }));
    const err = await failure(
      admin.send(new DecryptCommand({ CiphertextBlob: plain.CiphertextBlob })),
    );
    expect(err.message).toContain("with an explicit deny in a resource-based policy");
    const ctx = { purpose: "test" };
    const withCtx = await admin.send(
      new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("y"), EncryptionContext: ctx }),
    );
    const dec = await admin.send(
      new DecryptCommand({ CiphertextBlob: withCtx.CiphertextBlob, EncryptionContext: ctx }),
    );
    expect(Buffer.from(dec.Plaintext!).toString()).toBe("y");
  });
});

describe("ABAC", () => {
  it("a caller policy comparing aws:ResourceTag with aws:PrincipalTag", async () => {
    const mine = (
      await admin.send(new CreateKeyCommand({ Tags: [{ TagKey: "team", TagValue: "payments" }] }))
    ).KeyMetadata!.Arn!;
    const theirs = (
      await admin.send(new CreateKeyCommand({ Tags: [{ TagKey: "team", TagValue: "search" }] }))
    ).KeyMetadata!.Arn!;
    await carol.send(new EncryptCommand({ KeyId: mine, Plaintext: Buffer.from("x") }));
    expect(
      (
        await failure(
          carol.send(new EncryptCommand({ KeyId: theirs, Plaintext: Buffer.from("x") })),
        )
      ).name,
    ).toBe("AccessDeniedException");
    // Re-tagging the key moves access with it.
    await admin.send(
      new TagResourceCommand({ KeyId: theirs, Tags: [{ TagKey: "team", TagValue: "payments" }] }),
    );
    await carol.send(new EncryptCommand({ KeyId: theirs, Plaintext: Buffer.from("x") }));
  });
});

describe("audit", () => {
  it("one CloudTrail-shaped record per request, with no secret in any of them", async () => {
    const before = auditRecords(server.output()).length;
    const secretText = "the plaintext must never be logged 4f2a";
    const enc = await admin.send(
      new EncryptCommand({
        KeyId: keyArn,
        Plaintext: Buffer.from(secretText),
        EncryptionContext: { app: "audit" },
      }),
    );
    const dec = await admin.send(
      new DecryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        EncryptionContext: { app: "audit" },
      }),
    );
    const dataKey = await admin.send(
      new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: "AES_256" }),
    );
    const random = await admin.send(new GenerateRandomCommand({ NumberOfBytes: 32 }));
    const grant = await admin.send(
      new CreateGrantCommand({
        KeyId: keyArn,
        GranteePrincipal: BOB,
        RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:user/admin`,
        Operations: ["Decrypt"],
      }),
    );
    await bob.send(
      new DecryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        EncryptionContext: { app: "audit" },
        GrantTokens: [grant.GrantToken!],
      }),
    );
    await failure(
      alice.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: { app: "audit" },
        }),
      ),
    );
    await admin.send(new RetireGrantCommand({ GrantToken: grant.GrantToken }));

    const output = server.output();
    const secrets = [
      Buffer.from(secretText),
      Buffer.from(dec.Plaintext!),
      Buffer.from(dataKey.Plaintext!),
      Buffer.from(random.Plaintext!),
    ];
    for (const s of secrets)
      for (const form of [s.toString("base64"), s.toString("hex"), s.toString("utf8")])
        if (form.length >= 16) expect(output).not.toContain(form);
    expect(output).not.toContain(secretText);
    expect(output).not.toContain(grant.GrantToken!);
    for (const c of Object.values(server.as)) expect(output).not.toContain(c.secretAccessKey);
    // Nor the root key that wraps all key material.
    const rootKey = readFileSync(join(server.dataDir, "root.key"));
    for (const form of [
      rootKey.toString("base64"),
      rootKey.toString("hex"),
      rootKey.toString("utf8").trim(),
    ])
      if (form.length >= 16) expect(output).not.toContain(form);

    const records = auditRecords(output).slice(before);
    expect(records).toHaveLength(8);
    type Audit = {
      eventTime: string;
      requestID: string;
      requestParameters: Record<string, unknown>;
      responseElements: unknown;
      userIdentity: { arn: string };
      errorMessage: string;
    };
    const [encrypt, , , , createGrant, bobDecrypt, denied] = records as unknown as [
      Audit,
      Audit,
      Audit,
      Audit,
      Audit,
      Audit,
      Audit,
    ];
    expect(encrypt).toMatchObject({
      eventVersion: "1.08",
      eventSource: "kms.amazonaws.com",
      eventName: "Encrypt",
      awsRegion: "us-east-1",
      sourceIPAddress: "127.0.0.1",
      userIdentity: {
        type: "IAMUser",
        arn: `arn:aws:iam::${ACCOUNT}:user/admin`,
        accountId: ACCOUNT,
        accessKeyId: server.as["admin"]!.accessKeyId,
        userName: "admin",
      },
      requestParameters: { keyId: keyArn, encryptionContext: { app: "audit" } },
      responseElements: null,
      resources: [{ accountId: ACCOUNT, type: "AWS::KMS::Key", ARN: keyArn }],
      eventType: "AwsApiCall",
      recipientAccountId: ACCOUNT,
    });
    expect(encrypt.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(encrypt.requestID).toMatch(/^[0-9a-f-]{36}$/);
    expect(encrypt.requestParameters).not.toHaveProperty("plaintext");
    expect(createGrant.responseElements).toEqual({ grantId: grant.GrantId });
    expect(bobDecrypt.requestParameters).not.toHaveProperty("grantTokens");
    expect(bobDecrypt.userIdentity.arn).toBe(BOB);
    expect(denied).toMatchObject({
      eventName: "Decrypt",
      errorCode: "AccessDeniedException",
      userIdentity: { arn: ALICE },
    });
    expect(denied.errorMessage).toContain("is not authorized to perform: kms:Decrypt");
  });
});
