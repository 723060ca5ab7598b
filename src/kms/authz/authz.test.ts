import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decide, type AccessQuery } from "./evaluate.js";
import { grantAllows, type Grant } from "./grants.js";
import { compilePolicy, PolicyError, type PolicyKind } from "./policy.js";
import { principalFromArn, type Principal } from "./principal.js";
import { requestConditions, type RequestFacts } from "./requestContext.js";
import { decodeGrantToken, encodeGrantToken } from "./grantTokens.js";

const ACCOUNT = "111122223333";
const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN = `arn:aws:kms:us-east-2:${ACCOUNT}:key/${KEY_ID}`;
const ROOT = `arn:aws:iam::${ACCOUNT}:root`;
const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const ROLE = `arn:aws:iam::${ACCOUNT}:role/ExampleRole`;
const SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/ExampleRole/s1`;

type Doc = { Version?: string; Statement: Record<string, unknown>[] };
const text = (d: Doc) => JSON.stringify({ Version: "2012-10-17", ...d });
const policy = (d: Doc, kind: PolicyKind) => compilePolicy(text(d), kind);

const defaultKeyPolicy: Doc = {
  Statement: [
    {
      Sid: "Enable IAM User Permissions",
      Effect: "Allow",
      Principal: { AWS: ROOT },
      Action: "kms:*",
      Resource: "*",
    },
  ],
};

interface Case {
  readonly principal?: Principal;
  readonly keyPolicy?: Doc | undefined;
  readonly callerPolicies?: Doc[];
  readonly action: string;
  readonly facts?: Partial<RequestFacts>;
  readonly grants?: Grant[];
  readonly grantRequest?: AccessQuery["grantRequest"];
  readonly noKey?: boolean;
}

function run(c: Case) {
  const principal =
    c.principal ??
    principalFromArn(ALICE, {
      policies: (c.callerPolicies ?? []).map((d) => policy(d, "identity")),
    });
  const withPolicies: Principal = c.callerPolicies
    ? { ...principal, policies: c.callerPolicies.map((d) => policy(d, "identity")) }
    : principal;
  const facts: RequestFacts = {
    principal: withPolicies,
    now: new Date("2026-11-28T12:00:00Z"),
    sourceIp: "192.0.2.10",
    secureTransport: true,
    ...(!c.noKey && {
      key: {
        arn: KEY_ARN,
        keySpec: "SYMMETRIC_DEFAULT",
        keyUsage: "ENCRYPT_DECRYPT",
        origin: "AWS_KMS",
        tags: [],
      },
    }),
    ...c.facts,
  };
  return decide(
    {
      principal: withPolicies,
      action: c.action,
      ...(!c.noKey && {
        key: {
          keyId: KEY_ID,
          arn: KEY_ARN,
          account: ACCOUNT,
          policy: policy(c.keyPolicy ?? defaultKeyPolicy, "key"),
        },
      }),
      conditions: requestConditions(facts),
      grantRequest: {
        ...(facts.encryptionContext && { encryptionContext: facts.encryptionContext }),
        ...c.grantRequest,
      },
    },
    c.grants ?? [],
  );
}

const adminIam: Doc = { Statement: [{ Effect: "Allow", Action: "kms:*", Resource: "*" }] };

describe("AWS documentation examples (KMS Developer Guide)", () => {
  // key-policy-default.html: "Allows access to the AWS account and enables IAM policies"
  it("default key policy: IAM policy decides (allowed with kms:*, denied without)", () => {
    expect(run({ action: "kms:Encrypt", callerPolicies: [adminIam] }).allowed).toBe(true);
    const denied = run({ action: "kms:Encrypt", callerPolicies: [] });
    expect(denied).toEqual({
      allowed: false,
      reason: "because no identity-based policy allows the kms:Encrypt action",
    });
  });

  // key-policy-default.html: "Allows key users to use the KMS key"
  const keyUsers: Doc = {
    Statement: [
      {
        Sid: "Allow use of the key",
        Effect: "Allow",
        Principal: { AWS: ROLE },
        Action: [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:DescribeKey",
        ],
        Resource: "*",
      },
    ],
  };
  it("key users statement: the role (and its sessions) may encrypt, not manage", () => {
    const session = principalFromArn(SESSION);
    expect(run({ principal: session, keyPolicy: keyUsers, action: "kms:Encrypt" }).allowed).toBe(
      true,
    );
    expect(
      run({ principal: session, keyPolicy: keyUsers, action: "kms:ReEncryptFrom" }).allowed,
    ).toBe(true);
    expect(
      run({
        principal: session,
        keyPolicy: keyUsers,
        action: "kms:GenerateDataKeyWithoutPlaintext",
      }).allowed,
    ).toBe(true);
    const put = run({ principal: session, keyPolicy: keyUsers, action: "kms:PutKeyPolicy" });
    expect(put).toEqual({
      allowed: false,
      reason: "because no resource-based policy allows the kms:PutKeyPolicy action",
    });
    // An IAM user not named by the policy, even with kms:* in IAM, is refused (no delegation).
    expect(
      run({ keyPolicy: keyUsers, action: "kms:Encrypt", callerPolicies: [adminIam] }).allowed,
    ).toBe(false);
  });

  // key-policy-default.html: "Allows key administrators to administer the KMS key"
  it("key administrators statement: may manage, may not decrypt", () => {
    const admins: Doc = {
      Statement: [
        {
          Sid: "Allow access for Key Administrators",
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: [
            "kms:Create*",
            "kms:Describe*",
            "kms:Enable*",
            "kms:List*",
            "kms:Put*",
            "kms:Update*",
            "kms:Revoke*",
            "kms:Disable*",
            "kms:Get*",
            "kms:Delete*",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:ScheduleKeyDeletion",
            "kms:CancelKeyDeletion",
          ],
          Resource: "*",
        },
      ],
    };
    expect(run({ keyPolicy: admins, action: "kms:PutKeyPolicy" }).allowed).toBe(true);
    expect(run({ keyPolicy: admins, action: "kms:ScheduleKeyDeletion" }).allowed).toBe(true);
    expect(run({ keyPolicy: admins, action: "kms:Decrypt" }).allowed).toBe(false);
  });

  // key-policy-default.html: "Allow attachment of persistent resources"
  it("grants only for AWS resources: kms:GrantIsForAWSResource is false for direct callers", () => {
    const p: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
          Resource: "*",
          Condition: { Bool: { "kms:GrantIsForAWSResource": "true" } },
        },
      ],
    };
    const facts = { grant: { operations: ["Encrypt"], granteePrincipal: ROLE } };
    expect(run({ keyPolicy: p, action: "kms:CreateGrant", facts }).allowed).toBe(false);
  });

  // conditions-kms.html: kms:EncryptionContext:context-key ("AppName": "ExampleApp")
  it("kms:EncryptionContext:AppName — key case-insensitive, value case-sensitive", () => {
    const p: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: "kms:Decrypt",
          Resource: "*",
          Condition: { StringEquals: { "kms:EncryptionContext:AppName": "ExampleApp" } },
        },
      ],
    };
    const with_ = (ec: Record<string, string> | undefined) =>
      run({ keyPolicy: p, action: "kms:Decrypt", facts: ec ? { encryptionContext: ec } : {} })
        .allowed;
    expect(with_({ AppName: "ExampleApp" })).toBe(true);
    expect(with_({ appname: "ExampleApp" })).toBe(true);
    expect(with_({ AppName: "exampleapp" })).toBe(false);
    expect(with_({ Other: "ExampleApp" })).toBe(false);
    expect(with_(undefined)).toBe(false);
  });

  // conditions-kms.html: kms:EncryptionContextKeys — "Require an encryption context" (Null false)
  it("kms:EncryptionContextKeys with Null requires some encryption context", () => {
    const p: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: "kms:Encrypt",
          Resource: "*",
          Condition: { Null: { "kms:EncryptionContextKeys": "false" } },
        },
      ],
    };
    expect(
      run({ keyPolicy: p, action: "kms:Encrypt", facts: { encryptionContext: { a: "b" } } })
        .allowed,
    ).toBe(true);
    expect(run({ keyPolicy: p, action: "kms:Encrypt" }).allowed).toBe(false);
  });

  // conditions-kms.html: kms:EncryptionContextKeys — ForAllValues allows only listed keys
  it("ForAllValues:StringEquals kms:EncryptionContextKeys allows only the listed keys", () => {
    const p: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: "kms:Encrypt",
          Resource: "*",
          Condition: {
            "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["Purpose", "Dept"] },
          },
        },
      ],
    };
    const ec = (encryptionContext: Record<string, string>) =>
      run({ keyPolicy: p, action: "kms:Encrypt", facts: { encryptionContext } }).allowed;
    expect(ec({ Purpose: "x" })).toBe(true);
    expect(ec({ Purpose: "x", Dept: "y" })).toBe(true);
    expect(ec({ Purpose: "x", Other: "y" })).toBe(false);
    // ForAllValues is vacuously true without any key (AWS warns about exactly this).
    expect(run({ keyPolicy: p, action: "kms:Encrypt" }).allowed).toBe(true);
  });

  // conditions-kms.html: kms:CallerAccount
  it("kms:CallerAccount limits the statement to one account", () => {
    const p = (acct: string): Doc => ({
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: "*" },
          Action: "kms:Encrypt",
          Resource: "*",
          Condition: { StringEquals: { "kms:CallerAccount": acct } },
        },
      ],
    });
    expect(run({ keyPolicy: p(ACCOUNT), action: "kms:Encrypt" }).allowed).toBe(true);
    expect(run({ keyPolicy: p("444455556666"), action: "kms:Encrypt" }).allowed).toBe(false);
  });

  // conditions-kms.html: kms:GrantOperations
  it("kms:GrantOperations with ForAllValues limits the operations a grant may carry", () => {
    const p: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: ALICE },
          Action: "kms:CreateGrant",
          Resource: "*",
          Condition: {
            "ForAllValues:StringEquals": { "kms:GrantOperations": ["Decrypt", "Encrypt"] },
          },
        },
      ],
    };
    const ops = (operations: string[]) =>
      run({
        keyPolicy: p,
        action: "kms:CreateGrant",
        facts: { grant: { operations, granteePrincipal: ROLE } },
      }).allowed;
    expect(ops(["Encrypt"])).toBe(true);
    expect(ops(["Encrypt", "ReEncryptFrom"])).toBe(false);
  });

  // abac.html: "Allow a principal to use KMS keys based on resource tags" (aws:ResourceTag)
  // and policy variables (${aws:PrincipalTag/...}), the ABAC pattern of the IAM User Guide.
  it("ABAC: aws:ResourceTag must equal the caller's aws:PrincipalTag", () => {
    const iam: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Action: ["kms:Decrypt", "kms:Encrypt"],
          Resource: `arn:aws:kms:*:${ACCOUNT}:key/*`,
          Condition: { StringEquals: { "aws:ResourceTag/Project": "${aws:PrincipalTag/Project}" } },
        },
      ],
    };
    const caller = (project: string) =>
      principalFromArn(ALICE, { tags: { Project: project }, policies: [policy(iam, "identity")] });
    const keyTags = (value: string) => ({
      key: {
        arn: KEY_ARN,
        keySpec: "SYMMETRIC_DEFAULT",
        keyUsage: "ENCRYPT_DECRYPT",
        origin: "AWS_KMS",
        tags: [{ TagKey: "Project", TagValue: value }],
      },
    });
    expect(
      run({ principal: caller("Alpha"), action: "kms:Decrypt", facts: keyTags("Alpha") }).allowed,
    ).toBe(true);
    expect(
      run({ principal: caller("Beta"), action: "kms:Decrypt", facts: keyTags("Alpha") }).allowed,
    ).toBe(false);
  });

  // IAM User Guide, "Controlling access during AWS requests" (aws:RequestTag, aws:TagKeys):
  // create keys only with the caller's own team tag and no other tag keys.
  it("aws:RequestTag and aws:TagKeys on CreateKey", () => {
    const iam: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Action: "kms:CreateKey",
          Resource: "*",
          Condition: {
            StringEquals: { "aws:RequestTag/team": "${aws:PrincipalTag/team}" },
            "ForAllValues:StringEquals": { "aws:TagKeys": ["team", "env"] },
          },
        },
      ],
    };
    const caller = principalFromArn(ALICE, {
      tags: { team: "payments" },
      policies: [policy(iam, "identity")],
    });
    const create = (tags: Record<string, string>) =>
      run({
        principal: caller,
        action: "kms:CreateKey",
        noKey: true,
        facts: { requestTags: new Map(Object.entries(tags)), tagKeys: Object.keys(tags) },
      }).allowed;
    expect(create({ team: "payments" })).toBe(true);
    expect(create({ team: "payments", env: "prod" })).toBe(true);
    expect(create({ team: "search" })).toBe(false);
    expect(create({ team: "payments", owner: "x" })).toBe(false);
    expect(create({})).toBe(false);
  });

  // abac.html: "Allow a principal to use KMS keys based on aliases" (kms:ResourceAliases)
  it("ABAC: ForAnyValue:StringLike kms:ResourceAliases", () => {
    const iam: Doc = {
      Statement: [
        {
          Effect: "Allow",
          Action: "kms:Decrypt",
          Resource: "*",
          Condition: { "ForAnyValue:StringLike": { "kms:ResourceAliases": "alias/finance*" } },
        },
      ],
    };
    const withAliases = (aliases: string[]) =>
      run({
        action: "kms:Decrypt",
        callerPolicies: [iam],
        facts: {
          key: {
            arn: KEY_ARN,
            keySpec: "SYMMETRIC_DEFAULT",
            keyUsage: "ENCRYPT_DECRYPT",
            origin: "AWS_KMS",
            tags: [],
            aliases,
          },
        },
      }).allowed;
    expect(withAliases(["alias/finance-app", "alias/other"])).toBe(true);
    expect(withAliases(["alias/other"])).toBe(false);
    expect(withAliases([])).toBe(false);
  });

  // key-policy-overview.html / "Determining access": an explicit deny overrides any allow.
  it("explicit Deny in the key policy overrides an IAM allow", () => {
    const p: Doc = {
      Statement: [
        ...defaultKeyPolicy.Statement,
        {
          Sid: "DenyDecryptFromOutside",
          Effect: "Deny",
          Principal: "*",
          Action: "kms:Decrypt",
          Resource: "*",
          Condition: { NotIpAddress: { "aws:SourceIp": "192.0.2.0/24" } },
        },
      ],
    };
    const from = (ip: string) =>
      run({
        keyPolicy: p,
        action: "kms:Decrypt",
        callerPolicies: [adminIam],
        facts: { sourceIp: ip },
      });
    expect(from("192.0.2.44").allowed).toBe(true);
    expect(from("10.0.0.1")).toEqual({
      allowed: false,
      reason: "with an explicit deny in a resource-based policy",
    });
  });

  // key-policy-modifying-external-accounts.html: cross-account use needs both sides.
  it("cross-account: key policy and the external caller's IAM policy must both allow", () => {
    const external = "arn:aws:iam::444455556666:user/bob";
    const p: Doc = {
      Statement: [
        ...defaultKeyPolicy.Statement,
        {
          Sid: "Allow an external account to use this KMS key",
          Effect: "Allow",
          Principal: { AWS: ["arn:aws:iam::444455556666:root", external] },
          Action: ["kms:Encrypt", "kms:Decrypt"],
          Resource: "*",
        },
      ],
    };
    const bob = (iam: Doc[]) =>
      principalFromArn(external, { policies: iam.map((d) => policy(d, "identity")) });
    expect(run({ principal: bob([adminIam]), keyPolicy: p, action: "kms:Encrypt" }).allowed).toBe(
      true,
    );
    expect(run({ principal: bob([]), keyPolicy: p, action: "kms:Encrypt" }).allowed).toBe(false);
    expect(
      run({ principal: bob([adminIam]), keyPolicy: p, action: "kms:PutKeyPolicy" }).allowed,
    ).toBe(false);
  });

  // grants.html / API_GrantConstraints: EncryptionContextSubset and EncryptionContextEquals.
  it("grant constraints: Subset accepts supersets, Equals exact pairs; keys case-insensitive", () => {
    const base: Grant = {
      grantId: "a".repeat(64),
      keyId: KEY_ID,
      granteePrincipal: ROLE,
      issuingAccount: ACCOUNT,
      operations: ["Decrypt", "DescribeKey"],
      createdAt: 0,
    };
    const subset = { ...base, constraints: { EncryptionContextSubset: { Department: "IT" } } };
    const equals = { ...base, constraints: { EncryptionContextEquals: { Department: "IT" } } };
    const req = (ec: Record<string, string> | undefined, action = "kms:Decrypt") => ({
      keyId: KEY_ID,
      action,
      principalArns: [SESSION, ROLE],
      ...(ec && { encryptionContext: ec }),
    });
    expect(grantAllows(subset, req({ Department: "IT", Purpose: "Test" }))).toBe(true);
    expect(grantAllows(subset, req({ department: "IT" }))).toBe(true);
    expect(grantAllows(subset, req({ Department: "it" }))).toBe(false);
    expect(grantAllows(subset, req(undefined))).toBe(false);
    expect(grantAllows(equals, req({ Department: "IT" }))).toBe(true);
    expect(grantAllows(equals, req({ Department: "IT", Purpose: "Test" }))).toBe(false);
    // Constraints do not apply to DescribeKey; operations outside the grant never pass.
    expect(grantAllows(equals, req(undefined, "kms:DescribeKey"))).toBe(true);
    expect(grantAllows(equals, req({ Department: "IT" }, "kms:Encrypt"))).toBe(false);
  });

  it("a grant is an allow in its own right, but never beats an explicit Deny", () => {
    const session = principalFromArn(SESSION);
    const grant: Grant = {
      grantId: "b".repeat(64),
      keyId: KEY_ID,
      granteePrincipal: ROLE,
      issuingAccount: ACCOUNT,
      operations: ["Encrypt"],
      createdAt: 0,
    };
    expect(run({ principal: session, action: "kms:Encrypt", grants: [grant] })).toEqual({
      allowed: true,
      by: "grant",
      grantId: grant.grantId,
    });
    const deny: Doc = {
      Statement: [{ Effect: "Deny", Principal: { AWS: ROLE }, Action: "kms:*", Resource: "*" }],
    };
    expect(
      run({ principal: session, keyPolicy: deny, action: "kms:Encrypt", grants: [grant] }).allowed,
    ).toBe(false);
  });

  it("account-level actions need a caller policy; the account root has them all", () => {
    expect(run({ action: "kms:CreateKey", noKey: true, callerPolicies: [adminIam] }).allowed).toBe(
      true,
    );
    expect(run({ action: "kms:CreateKey", noKey: true, callerPolicies: [] }).allowed).toBe(false);
    expect(
      run({ principal: principalFromArn(ROOT), action: "kms:CreateKey", noKey: true }).allowed,
    ).toBe(true);
    // A statement limited to key ARNs does not cover actions on no key.
    const keysOnly: Doc = {
      Statement: [{ Effect: "Allow", Action: "kms:*", Resource: `arn:aws:kms:*:${ACCOUNT}:key/*` }],
    };
    expect(run({ action: "kms:CreateKey", noKey: true, callerPolicies: [keysOnly] }).allowed).toBe(
      false,
    );
    // NotResource covers what it does not list, including actions on no key.
    const notKeys: Doc = {
      Statement: [
        { Effect: "Allow", Action: "kms:*", NotResource: `arn:aws:kms:*:${ACCOUNT}:key/*` },
      ],
    };
    expect(run({ action: "kms:CreateKey", noKey: true, callerPolicies: [notKeys] }).allowed).toBe(
      true,
    );
    expect(run({ action: "kms:Encrypt", callerPolicies: [notKeys] }).allowed).toBe(false);
  });
});

describe("condition operators", () => {
  const check = (condition: Record<string, unknown>, facts: Partial<RequestFacts> = {}) =>
    run({
      keyPolicy: {
        Statement: [
          {
            Effect: "Allow",
            Principal: { AWS: ALICE },
            Action: "kms:Encrypt",
            Resource: "*",
            Condition: condition,
          },
        ],
      },
      action: "kms:Encrypt",
      facts,
    }).allowed;

  it("Date*, Numeric*, Bool, IfExists, negated operators on absent keys", () => {
    expect(check({ DateLessThan: { "aws:CurrentTime": "2027-01-01T00:00:00Z" } })).toBe(true);
    expect(check({ DateGreaterThan: { "aws:CurrentTime": "2027-01-01T00:00:00Z" } })).toBe(false);
    expect(check({ NumericLessThan: { "aws:EpochTime": "9999999999" } })).toBe(true);
    expect(check({ Bool: { "aws:SecureTransport": "true" } })).toBe(true);
    expect(check({ Bool: { "aws:SecureTransport": "true" } }, { secureTransport: false })).toBe(
      false,
    );
    expect(check({ StringEqualsIfExists: { "kms:EncryptionContext:x": "y" } })).toBe(true);
    expect(check({ StringNotEquals: { "kms:EncryptionContext:x": "y" } })).toBe(true);
    expect(check({ StringEquals: { "kms:EncryptionContext:x": "y" } })).toBe(false);
    expect(check({ StringLike: { "aws:PrincipalArn": "arn:aws:iam::*:user/al*" } })).toBe(true);
    expect(check({ ArnLike: { "aws:PrincipalArn": "arn:aws:iam::*:role/*" } })).toBe(false);
    expect(check({ IpAddress: { "aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/28"] } })).toBe(true);
    expect(check({ StringEqualsIgnoreCase: { "kms:CallerAccount": ACCOUNT } })).toBe(true);
  });
});

describe("malformed policies", () => {
  const bad = (t: string, kind: PolicyKind = "key") => {
    try {
      compilePolicy(t, kind);
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyError);
      return (err as Error).message;
    }
    throw new Error("compiled");
  };
  it("say which statement and field to fix", () => {
    expect(bad("{")).toMatch(/not valid JSON/);
    expect(bad(JSON.stringify({ Statement: [] }))).toMatch(/at least one Statement/);
    expect(
      bad(
        JSON.stringify({
          Statement: [{ Sid: "A", Effect: "Allow", Action: "kms:*", Resource: "*" }],
        }),
      ),
    ).toBe('Statement 1 (Sid "A") must have Principal or NotPrincipal.');
    expect(
      bad(
        JSON.stringify({
          Statement: [{ Effect: "Permit", Principal: "*", Action: "kms:*", Resource: "*" }],
        }),
      ),
    ).toMatch(/Statement 1 must have an Effect of "Allow" or "Deny"/);
    expect(
      bad(
        JSON.stringify({
          Statement: [
            {
              Effect: "Allow",
              Principal: "*",
              Action: "kms:*",
              Resource: "*",
              Condition: { StringSorta: { "kms:CallerAccount": "1" } },
            },
          ],
        }),
      ),
    ).toMatch(/unknown condition operator 'StringSorta'/);
    expect(
      bad(
        JSON.stringify({
          Statement: [{ Effect: "Allow", Principal: "*", Action: "kms:*", Resource: "*" }],
        }),
        "identity",
      ),
    ).toMatch(/must not name one/);
    expect(
      bad(
        JSON.stringify({
          Statement: [
            { Effect: "Allow", Principal: { AWS: "bob" }, Action: "kms:*", Resource: "*" },
          ],
        }),
      ),
    ).toMatch(/invalid principal 'bob'/);
  });
});

describe("grant tokens", () => {
  it("round-trip the grant id and are fresh every time", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (id) => {
        const grantId = Buffer.from(id).toString("hex");
        const a = encodeGrantToken(grantId, Buffer.alloc(16, 1));
        const b = encodeGrantToken(grantId, Buffer.alloc(16, 2));
        return a !== b && decodeGrantToken(a) === grantId && decodeGrantToken(b) === grantId;
      }),
    );
    expect(decodeGrantToken("not-a-token")).toBeUndefined();
  });
});

// ---- properties ----

const actions = [
  "kms:Encrypt",
  "kms:Decrypt",
  "kms:DescribeKey",
  "kms:PutKeyPolicy",
  "kms:CreateGrant",
];
const arbAction = fc.constantFrom(...actions);
const arbActionPattern = fc.constantFrom(
  "kms:*",
  "*",
  "kms:Encrypt",
  "kms:Decrypt",
  "kms:Describe*",
  "kms:*Grant",
  "kms:Put*",
);
const arbCondition = fc.option(
  fc.constantFrom<Record<string, unknown>>(
    { StringEquals: { "kms:EncryptionContext:app": "a" } },
    { StringNotEquals: { "kms:EncryptionContext:app": "b" } },
    { StringEquals: { "aws:PrincipalTag/team": "x" } },
    { StringLike: { "aws:ResourceTag/env": "prod*" } },
    { Bool: { "aws:SecureTransport": "true" } },
    { Null: { "kms:EncryptionContextKeys": "false" } },
    { "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["app", "env"] } },
    { "ForAnyValue:StringEquals": { "kms:EncryptionContextKeys": ["app"] } },
    { StringEqualsIfExists: { "kms:EncryptionContext:env": "prod" } },
  ),
  { nil: undefined },
);
const arbPrincipalElement = fc.constantFrom<unknown>(
  "*",
  { AWS: ROOT },
  { AWS: ALICE },
  { AWS: ROLE },
  { AWS: ACCOUNT },
);
const arbStatement = (kind: PolicyKind) =>
  fc
    .record({
      Effect: fc.constantFrom("Allow", "Deny"),
      Action: fc.array(arbActionPattern, { minLength: 1, maxLength: 3 }),
      Resource: fc.constant("*"),
      principal: arbPrincipalElement,
      condition: arbCondition,
    })
    .map(({ principal, condition, ...s }) => ({
      ...s,
      ...(kind === "key" && { Principal: principal }),
      ...(condition && { Condition: condition }),
    }));
const arbDoc = (kind: PolicyKind) =>
  fc.array(arbStatement(kind), { minLength: 1, maxLength: 5 }).map((Statement) => ({ Statement }));
const arbContext = fc.option(
  fc.dictionary(fc.constantFrom("app", "env", "App", "other"), fc.constantFrom("a", "b", "prod"), {
    maxKeys: 3,
  }),
  { nil: undefined },
);
const arbGrant = fc
  .record({
    grantee: fc.constantFrom(ROLE, ALICE, SESSION),
    operations: fc.subarray(["Encrypt", "Decrypt", "DescribeKey", "CreateGrant", "RetireGrant"], {
      minLength: 1,
    }),
    constraints: fc.option(
      fc.oneof(
        fc.record({
          EncryptionContextEquals: fc.dictionary(
            fc.constantFrom("app", "env"),
            fc.constantFrom("a", "prod"),
            { minKeys: 1, maxKeys: 2 },
          ),
        }),
        fc.record({
          EncryptionContextSubset: fc.dictionary(
            fc.constantFrom("app", "env"),
            fc.constantFrom("a", "prod"),
            { minKeys: 1, maxKeys: 2 },
          ),
        }),
      ),
      { nil: undefined },
    ),
  })
  .map((g): Grant => ({
    grantId: "c".repeat(64),
    keyId: KEY_ID,
    granteePrincipal: g.grantee,
    issuingAccount: ACCOUNT,
    operations: g.operations,
    ...(g.constraints && { constraints: g.constraints }),
    createdAt: 0,
  }));
const arbCaller = fc.record({
  arn: fc.constantFrom(ALICE, SESSION, ROOT),
  team: fc.constantFrom("x", "y"),
  iam: fc.array(arbDoc("identity"), { maxLength: 2 }),
});
const arbRequest = fc.record({
  caller: arbCaller,
  keyPolicy: arbDoc("key"),
  action: arbAction,
  context: arbContext,
  env: fc.constantFrom("prod-1", "dev"),
  grants: fc.array(arbGrant, { maxLength: 3 }),
  childOps: fc.subarray(["Encrypt", "Decrypt"], { minLength: 1 }),
});

type Req = typeof arbRequest extends fc.Arbitrary<infer T> ? T : never;

function evaluate(r: Req, overrides: { keyPolicy?: Doc; iam?: Doc[]; grants?: Grant[] } = {}) {
  const principal = principalFromArn(r.caller.arn, {
    tags: { team: r.caller.team },
    policies: (overrides.iam ?? r.caller.iam).map((d) => policy(d, "identity")),
  });
  return run({
    principal,
    keyPolicy: overrides.keyPolicy ?? r.keyPolicy,
    action: r.action,
    grants: overrides.grants ?? r.grants,
    facts: {
      ...(r.context && { encryptionContext: r.context }),
      key: {
        arn: KEY_ARN,
        keySpec: "SYMMETRIC_DEFAULT",
        keyUsage: "ENCRYPT_DECRYPT",
        origin: "AWS_KMS",
        tags: [{ TagKey: "env", TagValue: r.env }],
      },
    },
    grantRequest: r.action === "kms:CreateGrant" ? { childGrant: { operations: r.childOps } } : {},
  });
}

function grantCovers(
  g: Grant,
  arns: string[],
  action: string,
  context: Record<string, string> | undefined,
  childOps: string[],
): boolean {
  const op = action.slice(4);
  if (!arns.includes(g.granteePrincipal) || !g.operations.includes(op)) return false;
  const lc = new Map(Object.entries(context ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const has = (pairs: Record<string, string>) =>
    Object.entries(pairs).every(([k, v]) => lc.get(k.toLowerCase()) === v);
  if ((op === "Encrypt" || op === "Decrypt") && g.constraints) {
    const { EncryptionContextEquals: eq, EncryptionContextSubset: sub } = g.constraints;
    if (eq && !(has(eq) && lc.size === Object.keys(eq).length)) return false;
    if (sub && !has(sub)) return false;
  }
  if (op === "CreateGrant") {
    if (!childOps.every((o) => g.operations.includes(o))) return false;
    if (g.constraints) return false; // the child in these requests carries no constraints
  }
  return true;
}

const denyAll = (action: string): Record<string, unknown> => ({
  Effect: "Deny",
  Principal: "*",
  Action: action,
  Resource: "*",
});

describe("properties", () => {
  it("an explicit Deny always wins (key policy or caller policy, whatever else allows)", () => {
    fc.assert(
      fc.property(arbRequest, fc.boolean(), (r, inKeyPolicy) => {
        const decision = inKeyPolicy
          ? evaluate(r, { keyPolicy: { Statement: [...r.keyPolicy.Statement, denyAll(r.action)] } })
          : evaluate(r, {
              iam: [
                ...r.caller.iam,
                { Statement: [{ Effect: "Deny", Action: r.action, Resource: "*" }] },
              ],
            });
        return !decision.allowed && decision.reason.startsWith("with an explicit deny");
      }),
      { numRuns: 500 },
    );
  });

  it("a grant never widens access beyond its grantee, operations and constraints", () => {
    fc.assert(
      fc.property(arbRequest, arbGrant, (r, extra) => {
        const before = evaluate(r);
        const after = evaluate(r, { grants: [...r.grants, extra] });
        if (!after.allowed || before.allowed) return true;
        // Newly allowed: only through `extra`, and exactly within what it says (an
        // oracle written independently of grants.ts).
        const principal = principalFromArn(r.caller.arn);
        const arns = principal.roleArn ? [principal.arn, principal.roleArn] : [principal.arn];
        return after.by === "grant" && grantCovers(extra, arns, r.action, r.context, r.childOps);
      }),
      { numRuns: 500 },
    );
  });

  it("removing an Allow statement (key or caller policy) never grants more", () => {
    fc.assert(
      fc.property(arbRequest, fc.nat(), fc.boolean(), (r, pick, fromKey) => {
        if (fromKey) {
          const statements = r.keyPolicy.Statement;
          const i = pick % statements.length;
          if (statements[i]!["Effect"] !== "Allow" || statements.length === 1) return true;
          const removed = { Statement: statements.filter((_, j) => j !== i) };
          return !evaluate(r, { keyPolicy: removed }).allowed || evaluate(r).allowed;
        }
        if (r.caller.iam.length === 0) return true;
        const doc = r.caller.iam[pick % r.caller.iam.length]!;
        const i = pick % doc.Statement.length;
        if (doc.Statement[i]!["Effect"] !== "Allow") return true;
        const iam = r.caller.iam
          .map((d) => (d === doc ? { Statement: d.Statement.filter((_, j) => j !== i) } : d))
          .filter((d) => d.Statement.length > 0);
        return !evaluate(r, { iam }).allowed || evaluate(r).allowed;
      }),
      { numRuns: 500 },
    );
  });

  it("adding a Deny statement never grants more", () => {
    fc.assert(
      fc.property(arbRequest, arbStatement("key"), (r, s) => {
        const deny = { ...s, Effect: "Deny" };
        return (
          !evaluate(r, { keyPolicy: { Statement: [...r.keyPolicy.Statement, deny] } }).allowed ||
          evaluate(r).allowed
        );
      }),
      { numRuns: 300 },
    );
  });

  it("compiled policies are cached by text (no re-parsing per request)", () => {
    const t = text(defaultKeyPolicy);
    expect(compilePolicy(t, "key")).toBe(compilePolicy(`${t}`, "key"));
  });
});
