/**
 * The Argo CD health checks in docs/argocd/*.lua, run by a real Lua interpreter against
 * status objects the real reconcilers wrote (in-memory API server, real key service):
 * no status yet, a spec not observed yet, Ready True/False, waiting on a dependency,
 * PendingDeletion. And docs/observability.md carries exactly these scripts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runHealthScript } from "./support/argoHealth.js";
import { REPO_ROOT } from "./support/server.js";
import {
  disabled,
  harness,
  kmsAlias,
  kmsGrant,
  kmsKey,
  NS,
  withDeletion,
  type Harness,
} from "./kube/fixtures.js";

const KINDS = ["KmsKey", "KmsAlias", "KmsGrant"] as const;
const script = (kind: string) =>
  readFileSync(join(REPO_ROOT, "docs", "argocd", `${kind.toLowerCase()}.lua`), "utf8");

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.stop();
});

const health = (kind: (typeof KINDS)[number], obj: unknown) => runHealthScript(script(kind), obj);
const settle = (p: Promise<unknown>) => p.catch(() => undefined);

describe("Argo CD health of KmsKey", () => {
  it("Progressing without a status, Healthy once Ready, Progressing again for a new generation", async () => {
    const key = h.create(kmsKey("app"));
    expect(health("KmsKey", h.key("app"))).toEqual({
      status: "Progressing",
      message: "Waiting for the keyhaven controller to create the key",
    });
    await h.keys.reconcile(key);
    expect(health("KmsKey", h.key("app"))).toEqual({
      status: "Healthy",
      message: "The key is Enabled, as the spec asks.",
    });
    h.api.patch("kmskeys", NS, "app", "merge", { spec: { description: "v2" } });
    expect(health("KmsKey", h.key("app"))).toEqual({
      status: "Progressing",
      message: "Waiting for the keyhaven controller to apply generation 2",
    });
    await h.keys.reconcile(key);
    expect(health("KmsKey", h.key("app")).status).toBe("Healthy");
  });

  it("a key disabled as the spec asks is Healthy", async () => {
    await h.keys.reconcile(h.create(kmsKey("off", disabled)));
    expect(health("KmsKey", h.key("off"))).toEqual({
      status: "Healthy",
      message: "The key is Disabled, as the spec asks.",
    });
  });

  it("Degraded with the AWS error when the key service refuses the spec, before and after creation", async () => {
    const bad = h.create({ ...kmsKey("bad"), spec: { policy: "{not json" } });
    await settle(h.keys.reconcile(bad));
    const refused = health("KmsKey", h.key("bad"));
    expect(refused.status).toBe("Degraded");
    expect(refused.message).toMatch(
      /MalformedPolicyDocumentException: The policy is not valid JSON/,
    );
    expect(refused.message).not.toMatch(/Exception: \w+Exception/);

    const good = h.create(kmsKey("good"));
    await h.keys.reconcile(good);
    h.api.patch("kmskeys", NS, "good", "merge", { spec: { policy: "{not json" } });
    await settle(h.keys.reconcile(good));
    const drifted = health("KmsKey", h.key("good"));
    expect(drifted.status).toBe("Degraded");
    expect(drifted.message).toMatch(/^The spec is not applied: MalformedPolicyDocumentException: /);
  });

  it("Suspended while pending deletion, with the date", async () => {
    const key = h.create(kmsKey("old", withDeletion({ requested: true, pendingWindowDays: 7 })));
    await h.keys.reconcile(key);
    expect(h.key("old").status?.keyState).toBe("PendingDeletion");
    expect(health("KmsKey", h.key("old"))).toEqual({
      status: "Suspended",
      message: "The key is pending deletion on 2026-03-08T00:00:00Z",
    });
  });

  it("Suspended while an EXTERNAL key waits for its material", async () => {
    const key = h.create({ ...kmsKey("byok"), spec: { origin: "EXTERNAL" } });
    await h.keys.reconcile(key);
    expect(health("KmsKey", h.key("byok"))).toEqual({
      status: "Suspended",
      message: "Waiting for key material to be imported",
    });
  });
});

describe("Argo CD health of KmsAlias and KmsGrant", () => {
  it("Progressing until the referenced KmsKey is ready, then Healthy", async () => {
    const alias = h.create(kmsAlias("app", { name: "alias/app", targetKeyRef: { name: "k" } }));
    const grant = h.create(
      kmsGrant("app", {
        keyRef: { name: "k" },
        granteePrincipal: "arn:aws:iam::000000000000:role/app",
        operations: ["Decrypt"],
      }),
    );
    expect(health("KmsAlias", h.alias("app")).status).toBe("Progressing");
    expect(health("KmsGrant", h.grant("app")).status).toBe("Progressing");
    await settle(h.aliases.reconcile(alias));
    await settle(h.grants.reconcile(grant));
    expect(health("KmsAlias", h.alias("app"))).toMatchObject({ status: "Progressing" });
    expect(health("KmsAlias", h.alias("app")).message).toMatch(/^Waiting for its target KmsKey: /);
    expect(health("KmsGrant", h.grant("app")).message).toMatch(/^Waiting for its KmsKey: /);

    await h.keys.reconcile(h.create(kmsKey("k")));
    await h.aliases.reconcile(alias);
    await h.grants.reconcile(grant);
    expect(health("KmsAlias", h.alias("app")).status).toBe("Healthy");
    expect(health("KmsGrant", h.grant("app")).status).toBe("Healthy");
  });

  it("an alias name taken by another key is Degraded", async () => {
    const target = h.create(kmsKey("k"));
    await h.keys.reconcile(target);
    const first = h.create(kmsAlias("first", { name: "alias/taken", targetKeyRef: { name: "k" } }));
    await h.aliases.reconcile(first);
    const other = h.create(kmsKey("other"));
    await h.keys.reconcile(other);
    const second = h.create(
      kmsAlias("second", { name: "alias/taken", targetKeyRef: { name: "other" } }),
    );
    await settle(h.aliases.reconcile(second));
    const result = health("KmsAlias", h.alias("second"));
    expect(result.status).toBe("Degraded");
    expect(result.message).toMatch(/^AliasConflict: /);
  });
});

describe("docs/observability.md", () => {
  it("embeds each script exactly, under Argo CD's resource.customizations key", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs", "observability.md"), "utf8");
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const configMap = blocks
      .map((b) => parse(b) as { kind?: string; data?: Record<string, string> })
      .find((o) => o.kind === "ConfigMap" && o.data);
    expect(configMap).toBeDefined();
    // KmsSecret's script is run against real objects in test/cluster-kmssecret.test.ts.
    for (const kind of [...KINDS, "KmsSecret"])
      expect(configMap!.data![`resource.customizations.health.keyhaven.dev_${kind}`]).toBe(
        script(kind),
      );
  });
});
