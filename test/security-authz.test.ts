/**
 * Issue 12, items 1 and 3 to 6: each attack, replayed against the real key service with
 * the real AWS SDK (or a raw SigV4-signed request where the SDK will not send it), now
 * fails to do harm.
 */
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  EncryptCommand,
  KMSServiceException,
  ListAliasesCommand,
  ListResourceTagsCommand,
  TagResourceCommand,
  UpdateAliasCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMINISTRATOR,
  startWithPrincipals,
  type AccessControlServer,
} from "./support/accessControl.js";
import { kmsClient, signedFetch } from "./support/server.js";

const ACCOUNT = "000000000000";
const arn = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`;
const MALLORY = arn("mallory");
const ALIAS_ADMIN = arn("alias-admin");
const TENANT_A = arn("tenant-a");

/** The error an SDK call failed with (name and HTTP status); fails the test if it succeeded. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KMSServiceException)
      return {
        name: err.name,
        ...(err.$metadata.httpStatusCode && { status: err.$metadata.httpStatusCode }),
      };
    throw err;
  }
  throw new Error("the call succeeded");
}

const allow = (Action: string | string[], Resource: string | string[], Condition?: object) => ({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action, Resource, ...(Condition && { Condition }) }],
});

let server: AccessControlServer;
let admin: KMSClient;
let mallory: KMSClient;
let aliasAdmin: KMSClient;
let tagger: KMSClient;
let tenantA: KMSClient;
let nobody: KMSClient;

beforeAll(async () => {
  server = await startWithPrincipals({
    principals: {
      admin: { principal: arn("admin"), policies: [ADMINISTRATOR] },
      // The attacker of the review: allowed CreateKey and nothing else.
      mallory: { principal: MALLORY, policies: [allow("kms:CreateKey", "*")] },
      aliasAdmin: {
        principal: ALIAS_ADMIN,
        policies: [
          allow(
            ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
            "arn:aws:kms:*:*:alias/payments*",
          ),
          allow(["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"], "arn:aws:kms:*:*:key/*"),
        ],
      },
      tagger: {
        principal: arn("tagger"),
        policies: [
          allow("kms:TagResource", "arn:aws:kms:*:*:key/*", {
            "ForAllValues:StringEquals": { "aws:TagKeys": ["env", "team"] },
          }),
          allow("kms:CreateKey", "*", { StringEquals: { "aws:RequestTag/__proto__": "yes" } }),
        ],
      },
      tenantA: { principal: TENANT_A, policies: [] },
      // No `policies` at all: fail closed, like an IAM user with nothing attached.
      nobody: { principal: arn("nobody") },
    },
  });
  admin = kmsClient(server.handle("admin"));
  mallory = kmsClient(server.handle("mallory"));
  aliasAdmin = kmsClient(server.handle("aliasAdmin"));
  tagger = kmsClient(server.handle("tagger"));
  tenantA = kmsClient(server.handle("tenantA"));
  nobody = kmsClient(server.handle("nobody"));
});

afterAll(async () => {
  for (const c of [admin, mallory, aliasAdmin, tagger, tenantA, nobody]) c?.destroy();
  await server?.stop();
});

const newKey = async (client = admin, Policy?: string) =>
  (await client.send(new CreateKeyCommand({ ...(Policy && { Policy }) }))).KeyMetadata!.Arn!;

const aliasTarget = async (name: string) =>
  (await admin.send(new ListAliasesCommand({}))).Aliases!.find((a) => a.AliasName === name)
    ?.TargetKeyId;

describe("alias hijack (item 1)", () => {
  it("a caller allowed only CreateKey cannot repoint, squat or delete an alias", async () => {
    const victim = await newKey();
    await admin.send(new CreateAliasCommand({ AliasName: "alias/payments", TargetKeyId: victim }));
    // Mallory's own key: Mallory may do everything with it, and anyone may encrypt under it.
    const trap = await newKey(
      mallory,
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: MALLORY }, Action: "kms:*", Resource: "*" },
          { Effect: "Allow", Principal: "*", Action: "kms:Encrypt", Resource: "*" },
        ],
      }),
    );

    const hijack = await failure(
      mallory.send(new UpdateAliasCommand({ AliasName: "alias/payments", TargetKeyId: trap })),
    );
    expect(hijack).toEqual({ name: "AccessDeniedException", status: 400 });
    expect(await aliasTarget("alias/payments")).toBe(victim.split("/")[1]);

    const squat = await failure(
      mallory.send(new CreateAliasCommand({ AliasName: "alias/payroll", TargetKeyId: trap })),
    );
    expect(squat.name).toBe("AccessDeniedException");
    expect(await aliasTarget("alias/payroll")).toBeUndefined();

    const drop = await failure(
      mallory.send(new DeleteAliasCommand({ AliasName: "alias/payments" })),
    );
    expect(drop.name).toBe("AccessDeniedException");
    expect(await aliasTarget("alias/payments")).toBe(victim.split("/")[1]);
  });

  it("caller policies name alias ARNs; UpdateAlias also needs the current key, DeleteAlias the key", async () => {
    const a = await newKey();
    const b = await newKey();
    // A key whose policy lets only the admin in (no delegation to caller policies).
    const locked = await newKey(
      admin,
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: arn("admin") }, Action: "kms:*", Resource: "*" },
        ],
      }),
    );

    await aliasAdmin.send(
      new CreateAliasCommand({ AliasName: "alias/payments-v2", TargetKeyId: a }),
    );
    expect(await aliasTarget("alias/payments-v2")).toBe(a.split("/")[1]);
    // The alias resource is outside alias/payments*: refused, whatever the key allows.
    const elsewhere = await failure(
      aliasAdmin.send(new CreateAliasCommand({ AliasName: "alias/orders", TargetKeyId: a })),
    );
    expect(elsewhere.name).toBe("AccessDeniedException");
    // The key refuses: refused although the alias is in reach.
    const lockedKey = await failure(
      aliasAdmin.send(
        new CreateAliasCommand({ AliasName: "alias/payments-x", TargetKeyId: locked }),
      ),
    );
    expect(lockedKey.name).toBe("AccessDeniedException");

    await aliasAdmin.send(
      new UpdateAliasCommand({ AliasName: "alias/payments-v2", TargetKeyId: b }),
    );
    expect(await aliasTarget("alias/payments-v2")).toBe(b.split("/")[1]);

    // UpdateAlias away from a key the caller may not touch: the current key refuses.
    await admin.send(
      new CreateAliasCommand({ AliasName: "alias/payments-locked", TargetKeyId: locked }),
    );
    const fromLocked = await failure(
      aliasAdmin.send(
        new UpdateAliasCommand({ AliasName: "alias/payments-locked", TargetKeyId: a }),
      ),
    );
    expect(fromLocked.name).toBe("AccessDeniedException");
    expect(await aliasTarget("alias/payments-locked")).toBe(locked.split("/")[1]);
    const deleteLocked = await failure(
      aliasAdmin.send(new DeleteAliasCommand({ AliasName: "alias/payments-locked" })),
    );
    expect(deleteLocked.name).toBe("AccessDeniedException");

    await aliasAdmin.send(new DeleteAliasCommand({ AliasName: "alias/payments-v2" }));
    expect(await aliasTarget("alias/payments-v2")).toBeUndefined();
  });
});

describe("built-in object properties reached by name (item 3)", () => {
  it.each(["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__"])(
    "X-Amz-Target TrentService.%s is an unknown operation",
    async (name) => {
      const r = await signedFetch(server.handle("admin"), {
        target: `TrentService.${name}`,
        body: "{}",
      });
      expect(r.status).toBe(400);
      expect(r.json?.__type).toBe("UnknownOperationException");
    },
  );

  it.each(["constructor", "__proto__", "toString", "ForAnyValue:constructor"])(
    "a condition operator named %s is a malformed policy",
    async (operator) => {
      const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: arn("admin") }, Action: "kms:*", Resource: "*" },
          {
            Effect: "Deny",
            Principal: "*",
            Action: "kms:Decrypt",
            Resource: "*",
            Condition: { [operator]: { "kms:CallerAccount": ACCOUNT } },
          },
        ],
      });
      const err = await failure(admin.send(new CreateKeyCommand({ Policy: policy })));
      expect(err).toEqual({ name: "MalformedPolicyDocumentException", status: 400 });
    },
  );

  it.each([
    ["Decrypt", "{}"],
    ["ReEncrypt", '{"DestinationKeyId":"alias/any"}'],
  ])("%s %s (no CiphertextBlob) is a validation error, not an internal one", async (op, body) => {
    const r = await signedFetch(server.handle("admin"), { target: op, body });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      __type: "ValidationException",
      message:
        "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null",
    });
  });
});

describe("__proto__ as a tag key (item 4)", () => {
  it("appears in aws:TagKeys, so a tag-key condition refuses it", async () => {
    const key = await newKey();
    const err = await failure(
      tagger.send(
        new TagResourceCommand({ KeyId: key, Tags: [{ TagKey: "__proto__", TagValue: "x" }] }),
      ),
    );
    expect(err.name).toBe("AccessDeniedException");
    const tags = await admin.send(new ListResourceTagsCommand({ KeyId: key }));
    expect(tags.Tags ?? []).toEqual([]);
    await tagger.send(
      new TagResourceCommand({ KeyId: key, Tags: [{ TagKey: "env", TagValue: "x" }] }),
    );
  });

  it("appears in aws:RequestTag/__proto__", async () => {
    const tagged = (value: string) =>
      tagger.send(new CreateKeyCommand({ Tags: [{ TagKey: "__proto__", TagValue: value }] }));
    const created = await tagged("yes");
    const tags = await admin.send(
      new ListResourceTagsCommand({ KeyId: created.KeyMetadata!.KeyId! }),
    );
    expect(tags.Tags).toEqual([{ TagKey: "__proto__", TagValue: "yes" }]);
    expect((await failure(tagged("no"))).name).toBe("AccessDeniedException");
  });
});

describe("encryption-context keys that differ only in case (item 5)", () => {
  const both = { Tenant: "B", tenant: "A" };
  // The same pairs in the other order: a "first spelling wins" lookup gives A here.
  const reversed = { tenant: "A", Tenant: "B" };

  it("do not satisfy a grant's EncryptionContextEquals", async () => {
    const key = await newKey();
    await admin.send(
      new CreateGrantCommand({
        KeyId: key,
        GranteePrincipal: TENANT_A,
        Operations: ["Encrypt", "Decrypt"],
        Constraints: { EncryptionContextEquals: { tenant: "A" } },
      }),
    );
    const encrypt = (EncryptionContext: Record<string, string>) =>
      tenantA.send(
        new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("x"), EncryptionContext }),
      );
    // Grant constraints compare keys case-insensitively (AWS GrantConstraints reference).
    await encrypt({ TENANT: "A" });
    expect((await failure(encrypt(both))).name).toBe("AccessDeniedException");
    expect((await failure(encrypt(reversed))).name).toBe("AccessDeniedException");
    expect((await failure(encrypt({ Tenant: "A", tenant: "A" }))).name).toBe(
      "AccessDeniedException",
    );
  });

  it("do not satisfy a key-policy condition on kms:EncryptionContext:tenant, and trip its Deny", async () => {
    const key = await newKey(
      admin,
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: arn("admin") }, Action: "kms:*", Resource: "*" },
          {
            Effect: "Allow",
            Principal: { AWS: TENANT_A },
            Action: ["kms:Encrypt", "kms:Decrypt"],
            Resource: "*",
            Condition: { StringEquals: { "kms:EncryptionContext:tenant": "A" } },
          },
          {
            Effect: "Deny",
            Principal: "*",
            Action: "kms:Decrypt",
            Resource: "*",
            Condition: { StringNotEquals: { "kms:EncryptionContext:tenant": "A" } },
          },
        ],
      }),
    );
    const encrypt = (client: KMSClient, EncryptionContext: Record<string, string>) =>
      client.send(
        new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("x"), EncryptionContext }),
      );
    // The key part of a condition key is case-insensitive (IAM: context key names are not case-sensitive).
    await encrypt(tenantA, { Tenant: "A" });
    expect((await failure(encrypt(tenantA, both))).name).toBe("AccessDeniedException");
    expect((await failure(encrypt(tenantA, reversed))).name).toBe("AccessDeniedException");
    // The admin's Allow has no condition; the Deny that reads the ambiguous key applies to it.
    const blob = (await encrypt(admin, both)).CiphertextBlob!;
    const decrypt = await failure(
      admin.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: both })),
    );
    expect(decrypt.name).toBe("AccessDeniedException");
  });
});

describe("fail closed (item 6)", () => {
  it("a credential without policies is allowed nothing", async () => {
    const key = await newKey();
    expect((await failure(nobody.send(new CreateKeyCommand({})))).name).toBe(
      "AccessDeniedException",
    );
    expect(
      (await failure(nobody.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from("x") }))))
        .name,
    ).toBe("AccessDeniedException");
  });

  it("the start-up log counts the credentials that have no policy", () => {
    const line = server
      .output()
      .split("\n")
      .find((l) => l.includes("credentials without policies"));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({
      count: 2,
      principals: [TENANT_A, arn("nobody")],
    });
  });
});
