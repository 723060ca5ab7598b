/**
 * The cost of authorization alone, in-process and without HTTP: the Encrypt operation
 * (store read, authorization, sealing) on a key with AWS's default policy vs a key
 * with the realistic 10-statement policy of bench/policy.mjs and 100 grants, for an
 * administrator (policy path) and a grantee (grant path). CPU µs per call, interleaved.
 * Run after `npm run build`: `node bench/policyParts.mjs`.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KeyService,
  policyAuthorizer,
  SqliteKeyStore,
  LocalRootKey,
  pooledRandom,
  operations,
  decodeInput,
  compilePolicy,
  principalFromArn,
  ADMINISTRATOR_POLICY,
} from "../dist/src/bench/keyService.js";

const account = "000000000000";
const dir = mkdtempSync(join(tmpdir(), "keyhaven-policy-parts-"));
const { rootKey } = LocalRootKey.openOrCreate(join(dir, "root.key"));
const store = new SqliteKeyStore(join(dir, "keyhaven.db"));
const service = new KeyService({
  account,
  region: "us-east-1",
  store,
  rootKey,
  clock: { now: () => new Date() },
  random: pooledRandom(),
});
const admin = principalFromArn(`arn:aws:iam::${account}:user/bench`, {
  tags: { team: "payments", tenant: "t1" },
  policies: [compilePolicy(ADMINISTRATOR_POLICY, "identity")],
});
const app = principalFromArn(`arn:aws:iam::${account}:user/app`, { policies: [] });
const authorizer = policyAuthorizer();
const call = (principal, operation, json) => {
  const input = decodeInput(operation, json);
  const ctx = {
    service,
    authorizer,
    caller: { principal: principal.arn, accessKeyId: "AKIA", account, identity: principal },
    requestId: "r",
    sourceIp: "127.0.0.1",
    secureTransport: false,
    operation,
    resources: [],
    input,
  };
  return operations.get(operation)(ctx, input);
};

// The realistic policy, taken from bench/policy.mjs so both benches measure the same thing.
const src = readFileSync(new URL("./policy.mjs", import.meta.url), "utf8");
const root = `arn:aws:iam::${account}:root`;
void root;
const policyText = (0, eval)(
  `(() => { const account = "${account}"; const root = "arn:aws:iam::${account}:root"; return ${src
    .slice(src.indexOf("JSON.stringify({\n  Version"), src.indexOf("const baselineKey"))
    .trim()
    .replace(/;$/, "")}; })()`,
);
const baseKey = (await call(admin, "CreateKey", {})).KeyMetadata.KeyId;
const key = (
  await call(admin, "CreateKey", {
    Policy: policyText,
    Tags: [
      { TagKey: "team", TagValue: "payments" },
      { TagKey: "env", TagValue: "prod-eu" },
    ],
  })
).KeyMetadata.KeyId;
await call(admin, "CreateAlias", { AliasName: "alias/payments-records", TargetKeyId: key });
for (let i = 0; i < 100; i++)
  await call(admin, "CreateGrant", {
    KeyId: key,
    GranteePrincipal: i === 57 ? app.arn : `arn:aws:iam::${account}:role/workload-${i}`,
    Operations: ["Encrypt", "Decrypt", "GenerateDataKey"],
    Constraints: { EncryptionContextSubset: { tenant: "t1" } },
  });

const plaintext = randomBytes(1024).toString("base64");
const encrypt = (principal, keyId) =>
  call(principal, "Encrypt", {
    KeyId: keyId,
    Plaintext: plaintext,
    EncryptionContext: { tenant: "t1", purpose: "bench" },
  });

async function cpuPerCall(fn, n) {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}
const cases = {
  "default policy (admin)": () => encrypt(admin, baseKey),
  "realistic policy (admin)": () => encrypt(admin, key),
  "100 grants (grantee)": () => encrypt(app, key),
};
for (const fn of Object.values(cases)) await cpuPerCall(fn, 3000);
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let round = 0; round < 5; round++)
  for (const [name, fn] of Object.entries(cases)) results[name].push(await cpuPerCall(fn, 20000));
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const base = median(results["default policy (admin)"]);
for (const [name, v] of Object.entries(results))
  console.log(
    `${name.padEnd(28)} ${median(v).toFixed(2)} µs/Encrypt (without HTTP), +${(median(v) - base).toFixed(2)} µs`,
  );
await store.close();
