/**
 * `keyhaven serve --seed DIR` and the CRD files: the operator's reconcilers apply
 * the examples/ manifests to a local key service with no cluster, a restart adopts
 * instead of duplicating, invalid manifests stop the start with the schema's
 * message, and crds/ is exactly what src/api/v1alpha1/schemas.ts generates.
 */
import { ListAliasesCommand, ListGrantsCommand, ListKeysCommand } from "@aws-sdk/client-kms";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { crdFileName, crdYaml } from "../src/api/v1alpha1/crdFiles.js";
import { celRules, celSupported } from "../src/api/v1alpha1/openapi.js";
import { objectSchema } from "../src/api/v1alpha1/schemas.js";
import { KINDS, type KindName } from "../src/api/v1alpha1/types.js";
import { loadConfig } from "../src/config/config.js";
import { schemasFromCrds } from "./kube/httpApiServer.js";
import { kmsClient, REPO_ROOT, startInProcess, tempDir } from "./support/server.js";

const examples = join(REPO_ROOT, "examples");

describe("serve --seed", () => {
  it("applies the examples with the operator's reconcilers, and a restart adopts instead of duplicating", async () => {
    const dataDir = tempDir();
    const first = await startInProcess({ dataDir, args: ["--seed", examples] });
    const outcomes = first.running.seed!.outcomes;
    const byName = Object.fromEntries(outcomes.map((o) => [`${o.kind}/${o.name}`, o]));
    expect(Object.keys(byName).sort()).toEqual([
      "KmsAlias/archive",
      "KmsAlias/orders",
      "KmsGrant/orders-api",
      "KmsGrant/orders-api-data-key",
      "KmsKey/archive",
      "KmsKey/legacy",
      "KmsKey/orders",
    ]);
    expect(byName["KmsKey/orders"]).toMatchObject({ ready: true, reason: "KeyEnabled" });
    expect(byName["KmsKey/archive"]).toMatchObject({ ready: true, reason: "KeyDisabled" });
    expect(byName["KmsKey/legacy"]).toMatchObject({ ready: false, reason: "PendingDeletion" });
    expect(byName["KmsAlias/orders"]).toMatchObject({ ready: true });
    expect(byName["KmsAlias/archive"]).toMatchObject({ ready: true });
    expect(byName["KmsGrant/orders-api"]).toMatchObject({ ready: true });
    expect(byName["KmsGrant/orders-api-data-key"]).toMatchObject({ ready: true });
    const kms = kmsClient(first);
    const snapshot = async () => {
      const keys = (await kms.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId).sort();
      const aliases = (await kms.send(new ListAliasesCommand({})))
        .Aliases!.map((a) => `${a.AliasName}→${a.TargetKeyId}`)
        .sort();
      const orders = aliases.find((a) => a.startsWith("alias/shop/orders→"))!.split("→")[1]!;
      const grants = (await kms.send(new ListGrantsCommand({ KeyId: orders }))).Grants!.map(
        (g) => g.GrantId,
      );
      return { keys, aliases, grants };
    };
    const before = await snapshot();
    expect(before.keys).toHaveLength(3);
    expect(before.aliases.map((a) => a.split("→")[0])).toEqual([
      "alias/archive",
      "alias/shop/orders",
    ]);
    expect(before.grants).toHaveLength(2);
    await first.stop();
    kms.destroy();

    const second = await startInProcess({ dataDir, args: ["--seed", examples] });
    const kms2 = kmsClient(second);
    const again = await (async () => {
      const keys = (await kms2.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId).sort();
      const aliases = (await kms2.send(new ListAliasesCommand({})))
        .Aliases!.map((a) => `${a.AliasName}→${a.TargetKeyId}`)
        .sort();
      const orders = aliases.find((a) => a.startsWith("alias/shop/orders→"))!.split("→")[1]!;
      const grants = (await kms2.send(new ListGrantsCommand({ KeyId: orders }))).Grants!.map(
        (g) => g.GrantId,
      );
      return { keys, aliases, grants };
    })();
    expect(again).toEqual(before);
    expect(
      second.running.seed!.outcomes.every((o) => o.ready || o.reason === "PendingDeletion"),
    ).toBe(true);
    kms2.destroy();
    await second.stop();
  });

  it("an invalid manifest stops the start with the file and the schema's message", async () => {
    const dir = tempDir("keyhaven-seed-");
    writeFileSync(
      join(dir, "bad.yaml"),
      "apiVersion: keyhaven.dev/v1alpha1\nkind: KmsKey\nmetadata: {name: k}\nspec:\n  rotation: {enabled: true, periodDays: 30}\n",
    );
    await expect(startInProcess({ args: ["--seed", dir] })).rejects.toThrow(
      /bad\.yaml: .*spec\.rotation\.periodDays.*greater than or equal to 90/,
    );
  });
});

describe("CRDs", () => {
  it("crds/ is exactly what schemas.ts generates", () => {
    for (const kind of Object.keys(KINDS) as KindName[]) {
      const file = join(REPO_ROOT, "crds", crdFileName(kind));
      expect(
        readFileSync(file, "utf8"),
        `${file} is stale: regenerate it (see src/api/v1alpha1/crdFiles.ts)`,
      ).toBe(crdYaml(kind));
    }
  });

  it("every CEL rule in crds/ is one the in-memory API server evaluates", () => {
    const schemas = schemasFromCrds();
    const rules = Object.values(schemas).flatMap(celRules);
    expect(rules.length).toBeGreaterThanOrEqual(8);
    expect(rules.filter((r) => !celSupported(r))).toEqual([]);
    expect(schemas.KmsKey).toEqual(objectSchema("KmsKey"));
  });
});

describe("keyhaven controller flags", () => {
  it("reads the endpoint and AWS credentials from the environment, flags first", () => {
    const config = loadConfig(
      ["controller", "--kubeconfig", "/k", "--disable-webhook", "--namespace", "ops"],
      {
        AWS_ENDPOINT_URL_KMS: "http://keyhaven:8080",
        AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_DEFAULT_REGION: "eu-west-1",
        POD_NAME: "controller-0",
      },
    );
    expect(config).toMatchObject({
      command: "controller",
      kubeconfig: "/k",
      namespace: "ops",
      kmsEndpoint: "http://keyhaven:8080",
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" },
      identity: "controller-0",
      leaderElection: true,
    });
    expect(config).not.toHaveProperty("webhook");
  });

  it("refuses to start without a key service endpoint, saying how to give one", () => {
    expect(() => loadConfig(["controller"], {})).toThrow(
      /--kms-endpoint: the key service URL is required \(or AWS_ENDPOINT_URL_KMS\)/,
    );
  });

  it("takes lease timing and the drift-check interval as durations, client-go's order enforced", () => {
    const env = { AWS_ENDPOINT_URL_KMS: "http://keyhaven:8080" };
    expect(loadConfig(["controller", "--disable-webhook"], env)).toMatchObject({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      driftCheckMs: 600_000,
    });
    expect(
      loadConfig(
        [
          "controller",
          "--disable-webhook",
          "--leader-elect-lease-duration",
          "4s",
          "--leader-elect-renew-deadline",
          "3000ms",
          "--drift-check-interval",
          "2m",
        ],
        { ...env, KEYHAVEN_LEADER_ELECT_RETRY_PERIOD: "500ms" },
      ),
    ).toMatchObject({
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 500,
      driftCheckMs: 120_000,
    });
    expect(() => loadConfig(["controller", "--leader-elect-renew-deadline", "20s"], env)).toThrow(
      /must be shorter than the renew deadline .* shorter than the lease duration/,
    );
    expect(() => loadConfig(["controller", "--drift-check-interval", "soon"], env)).toThrow(
      /--drift-check-interval: a duration such as 10m, 15s or 1500ms, got 'soon'/,
    );
  });
});
