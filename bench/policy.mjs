/**
 * Encrypt under a realistic key policy (10 statements with conditions on the
 * encryption context, tags, aliases and principals) and 100 grants on the key,
 * against the same Encrypt under AWS's default key policy — same server, same run,
 * interleaved A B A B, median ratio reported. Goal: 0.9 or more.
 *
 *   npm run build && node bench/policy.mjs [--rounds 5] [--duration 5] [--warmup 2] [--connections 50]
 *                                          [--subjects policy,grant] [--profile DIR]
 *
 * Subjects:
 *  - "policy": the administrator, allowed through the account delegation after every
 *    statement's conditions are evaluated (and the key's aliases read for kms:ResourceAliases);
 *  - "grant": a principal with no policies at all, allowed only by one of the 100 grants
 *    (the policies refuse first, then the grants are matched).
 * Numbers are information, never a pass/fail gate.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { compare, formatSummaries } from "./lib/harness.mjs";
import { spawnServer } from "./lib/servers.mjs";
import { callKms, signKmsRequest } from "./lib/sign.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "50" },
    subjects: { type: "string", default: "policy,grant" },
    profile: { type: "string" },
  },
});

const region = "us-east-1";
const account = "000000000000";
const credentials = {
  bench: {
    accessKeyId: "AKIABENCHPOLICY00001",
    secretAccessKey: randomBytes(30).toString("base64"),
  },
  app: { accessKeyId: "AKIABENCHPOLICY00002", secretAccessKey: randomBytes(30).toString("base64") },
};
const dataDir = mkdtempSync(join(tmpdir(), "keyhaven-bench-policy-"));
const server = await spawnServer(
  join(import.meta.dirname, "policyServer.mjs"),
  { dataDir, credentials, region, account },
  {
    name: "keyhaven",
    execArgv: args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : [],
  },
);
const as = (who) => ({ ...server, region, credential: credentials[who] });
const admin = as("bench");

async function call(operation, input, target = admin) {
  const { status, json } = await callKms(target, operation, input);
  if (status !== 200) throw new Error(`${operation} failed: ${status} ${JSON.stringify(json)}`);
  return json;
}

const root = `arn:aws:iam::${account}:root`;
const realisticPolicy = JSON.stringify({
  Version: "2012-10-17",
  Id: "payments-key-policy",
  Statement: [
    {
      Sid: "EnableIAMPolicies",
      Effect: "Allow",
      Principal: { AWS: root },
      Action: "kms:*",
      Resource: "*",
    },
    {
      Sid: "KeyAdministrators",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${account}:role/kms-admins` },
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
    {
      Sid: "PaymentsServiceUse",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${account}:role/payments/api` },
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
      Resource: "*",
      Condition: { StringEquals: { "kms:EncryptionContext:tenant": "${aws:PrincipalTag/tenant}" } },
    },
    {
      Sid: "AllowAttachmentOfPersistentResources",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${account}:role/payments/api` },
      Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      Resource: "*",
      Condition: { Bool: { "kms:GrantIsForAWSResource": "true" } },
    },
    {
      Sid: "RequireEncryptionContext",
      Effect: "Deny",
      Principal: "*",
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
      Resource: "*",
      Condition: { Null: { "kms:EncryptionContextKeys": "true" } },
    },
    {
      Sid: "OnlyKnownContextKeys",
      Effect: "Deny",
      Principal: "*",
      Action: ["kms:Encrypt", "kms:GenerateDataKey*"],
      Resource: "*",
      Condition: {
        "ForAnyValue:StringNotEquals": {
          "kms:EncryptionContextKeys": ["tenant", "purpose", "record"],
        },
      },
    },
    {
      Sid: "TeamByTags",
      Effect: "Allow",
      Principal: { AWS: root },
      Action: ["kms:Encrypt", "kms:Decrypt"],
      Resource: "*",
      Condition: {
        StringEquals: { "aws:ResourceTag/team": "${aws:PrincipalTag/team}" },
        StringLike: { "aws:ResourceTag/env": ["prod*", "staging*"] },
      },
    },
    {
      Sid: "DecryptThroughAppAliases",
      Effect: "Allow",
      Principal: { AWS: root },
      Action: "kms:Decrypt",
      Resource: "*",
      Condition: { "ForAnyValue:StringLike": { "kms:ResourceAliases": "alias/payments-*" } },
    },
    {
      Sid: "SameAccountOnly",
      Effect: "Deny",
      Principal: "*",
      Action: "kms:*",
      Resource: "*",
      Condition: { StringNotEquals: { "kms:CallerAccount": account } },
    },
    {
      Sid: "ProtectDeletion",
      Effect: "Deny",
      Principal: "*",
      Action: ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"],
      Resource: "*",
      Condition: {
        ArnNotLike: {
          "aws:PrincipalArn": [
            `arn:aws:iam::${account}:role/kms-admins`,
            `arn:aws:iam::${account}:user/bench`,
          ],
        },
      },
    },
  ],
});

const baselineKey = (await call("CreateKey", { Description: "default policy" })).KeyMetadata.KeyId;
const subjectKey = (
  await call("CreateKey", {
    Description: "realistic policy",
    Policy: realisticPolicy,
    Tags: [
      { TagKey: "team", TagValue: "payments" },
      { TagKey: "env", TagValue: "prod-eu" },
    ],
  })
).KeyMetadata.KeyId;
await call("CreateAlias", { AliasName: "alias/payments-records", TargetKeyId: subjectKey });
// 100 grants on the subject key: 99 for other principals, one for `app`.
const appArn = `arn:aws:iam::${account}:user/app`;
const grantFor = 57;
for (let i = 0; i < 100; i++) {
  await call("CreateGrant", {
    KeyId: subjectKey,
    GranteePrincipal: i === grantFor ? appArn : `arn:aws:iam::${account}:role/workload-${i}`,
    Operations: ["Encrypt", "Decrypt", "GenerateDataKey"],
    Constraints: { EncryptionContextSubset: { tenant: "t1" } },
    Name: `grant-${i}`,
  });
}

const context = { tenant: "t1", purpose: "bench" };
const plaintext = randomBytes(1024).toString("base64");
const encrypt = (keyId) => ({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context });

// Baseline and subjects are the same server; `who`/`keyId` pick the request.
const baseline = { ...admin, name: "default policy", who: "bench", keyId: baselineKey };
const subjects = [
  { ...admin, id: "policy", name: "realistic policy", who: "bench", keyId: subjectKey },
  { ...as("app"), id: "grant", name: "grant (100 on the key)", who: "app", keyId: subjectKey },
].filter((s) => args.subjects.split(",").includes(s.id));

const scenarioFor = (subject) => ({
  name: `Encrypt 1 KiB: ${subject.name}`,
  async prepare(target) {
    return [await signKmsRequest(as(target.who), "Encrypt", encrypt(target.keyId))];
  },
  async check(target) {
    const { status, json } = await callKms(as(target.who), "Encrypt", encrypt(target.keyId));
    if (status !== 200) throw new Error(`${target.name}: ${status} ${JSON.stringify(json)}`);
  },
});

console.log(
  `keyhaven policy bench ${new Date().toISOString()}: node ${process.version}, ${cpus().length} CPUs, ` +
    `${args.connections} connections, ${args.rounds} rounds × ${args.duration}s`,
);
const summaries = [];
try {
  for (const subject of subjects) {
    summaries.push(
      ...(await compare({
        baseline,
        subject,
        scenarios: [scenarioFor(subject)],
        rounds: Number(args.rounds),
        durationSeconds: Number(args.duration),
        warmupSeconds: Number(args.warmup),
        connections: Number(args.connections),
        log: (line) => console.log(`  ${line}`),
      })),
    );
  }
} finally {
  const summary = await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (summary.auditLines !== undefined) console.log(`  audit lines written: ${summary.auditLines}`);
}
console.log("");
console.log(formatSummaries(summaries, { baselineName: "default policy", subjectName: "subject" }));
const errors = summaries.reduce((n, s) => n + s.baseline.errors + s.subject.errors, 0);
if (errors > 0)
  console.log(`\nWARNING: ${errors} requests failed; the figures above are not valid.`);
