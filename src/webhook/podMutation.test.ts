import fc from "fast-check";
import fastJsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { mutatePod, type InjectionSettings, type JsonObject } from "./podMutation.js";

const { applyPatch, compare, deepClone } = fastJsonPatch;

const SETTINGS: InjectionSettings = {
  kmsEndpoint: "https://kms.example:8443",
  stsEndpoint: "https://kms.example:8443",
  region: "us-east-1",
  roleArn: "arn:aws:iam::000000000000:role/{namespace}/{serviceAccount}",
  agentImage: "keyhaven:test",
  tokenExpirationSeconds: 600,
  refreshIntervalSeconds: 60,
};

const name = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const envName = fc.constantFrom("A", "B_2", "AWS_REGION", "AWS_ROLE_ARN", "SECRET", "TOKEN");
const envValue = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc
    .uint8Array({ minLength: 1, maxLength: 24 })
    .map((b) => `keyhaven:${Buffer.from(b).toString("base64")}`),
);
const env = fc.uniqueArray(fc.record({ name: envName, value: envValue }), {
  selector: (e) => e.name,
  maxLength: 4,
});
const container = fc.record(
  {
    name,
    image: fc.constant("img:1"),
    env,
    command: fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 2 }),
    args: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
  },
  { requiredKeys: ["name", "image"] },
);
const initContainer = fc.record(
  { name, image: fc.constant("init:1"), restartPolicy: fc.constant("Always") },
  { requiredKeys: ["name", "image"] },
);
const annotations = fc.record(
  {
    "keyhaven.dev/inject": fc.constantFrom("true", "false", "yes"),
    "keyhaven.dev/data-key": fc.constantFrom(
      "alias/app",
      "1234abcd-12ab-34cd-56ef-1234567890ab",
      "bad key",
    ),
    "keyhaven.dev/refresh": fc.constantFrom("true", "false"),
    "keyhaven.dev/env-wrapper": fc.constantFrom("false"),
    other: fc.string({ maxLength: 5 }),
  },
  { requiredKeys: [] },
);
const pod = fc
  .record({
    annotations,
    containers: fc.uniqueArray(container, { selector: (c) => c.name, minLength: 1, maxLength: 3 }),
    initContainers: fc.uniqueArray(initContainer, { selector: (c) => c.name, maxLength: 2 }),
    volumes: fc.array(fc.record({ name, emptyDir: fc.constant({}) }), { maxLength: 2 }),
    runAsUser: fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined }),
  })
  .filter(
    // Names unique across containers and init containers, as the API server requires.
    (p) =>
      new Set([...p.containers, ...p.initContainers].map((c) => c.name)).size ===
      p.containers.length + p.initContainers.length,
  )
  .map((p): JsonObject => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "w-", annotations: p.annotations },
    spec: {
      containers: p.containers,
      ...(p.initContainers.length > 0 && { initContainers: p.initContainers }),
      ...(p.volumes.length > 0 && { volumes: p.volumes }),
      ...(p.runAsUser !== undefined && { securityContext: { runAsUser: p.runAsUser } }),
    },
  }));

function apply(doc: JsonObject, patch: ReturnType<typeof compare>): JsonObject {
  return applyPatch(deepClone(doc), patch, true, false).newDocument as JsonObject;
}

describe("mutatePod properties", () => {
  it("the patch applied to the pod gives the mutated pod; reviewing the result again changes nothing", () => {
    const outcomes = { inject: 0, refuse: 0, skip: 0, wrapped: 0 };
    fc.assert(
      fc.property(pod, (input) => {
        const before = deepClone(input) as JsonObject;
        const first = mutatePod(input, "ns", SETTINGS);
        expect(input).toEqual(before); // the argument is never modified
        outcomes[first.kind]++;
        if (first.kind !== "inject") return;
        if (JSON.stringify(first.pod).includes("keyhaven-env")) outcomes.wrapped++;
        const patch = compare(input, first.pod);
        const applied = apply(input, patch);
        expect(applied).toEqual(first.pod);
        const second = mutatePod(applied, "ns", SETTINGS);
        expect(second.kind).toBe("inject");
        if (second.kind === "inject") expect(compare(applied, second.pod)).toEqual([]);
      }),
      { numRuns: 300 },
    );
    // The generator reaches every branch, not just the easy one.
    expect(outcomes.inject).toBeGreaterThan(20);
    expect(outcomes.wrapped).toBeGreaterThan(0);
    expect(outcomes.refuse).toBeGreaterThan(0);
    expect(outcomes.skip).toBeGreaterThan(20);
  });

  it('pods without keyhaven.dev/inject: "true" are never changed', () => {
    fc.assert(
      fc.property(pod, (input) => {
        const annotations = (input["metadata"] as JsonObject)["annotations"] as JsonObject;
        fc.pre(annotations["keyhaven.dev/inject"] !== "true");
        expect(mutatePod(input, "ns", SETTINGS).kind).toBe("skip");
      }),
      { numRuns: 200 },
    );
  });

  it("keeps everything the pod had: env values, other volumes and init containers survive", () => {
    fc.assert(
      fc.property(pod, (input) => {
        const result = mutatePod(input, "ns", SETTINGS);
        if (result.kind !== "inject") return;
        const inSpec = input["spec"] as JsonObject;
        const outSpec = result.pod["spec"] as JsonObject;
        for (const c of inSpec["containers"] as JsonObject[]) {
          const out = (outSpec["containers"] as JsonObject[]).find((o) => o["name"] === c["name"])!;
          for (const e of (c["env"] as JsonObject[] | undefined) ?? [])
            expect(out["env"]).toContainEqual(e);
          // The original command and args run, in order, at the end of the (maybe wrapped) command.
          const original = [
            ...((c["command"] as string[]) ?? []),
            ...((c["args"] as string[]) ?? []),
          ];
          const now = [
            ...((out["command"] as string[]) ?? []),
            ...((out["args"] as string[]) ?? []),
          ];
          expect(now.slice(now.length - original.length)).toEqual(original);
        }
        for (const v of (inSpec["volumes"] as JsonObject[] | undefined) ?? [])
          expect(outSpec["volumes"]).toContainEqual(v);
        const inits = ((outSpec["initContainers"] as JsonObject[] | undefined) ?? []).map(
          (c) => c["name"],
        );
        for (const c of (inSpec["initContainers"] as JsonObject[] | undefined) ?? [])
          expect(inits).toContain(c["name"]);
      }),
      { numRuns: 200 },
    );
  });

  it("accepts every KeyId form KMS accepts in keyhaven.dev/data-key and refuses typos", () => {
    const withKey = (ref: string): JsonObject => ({
      metadata: { annotations: { "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": ref } },
      spec: { containers: [{ name: "app", image: "x" }] },
    });
    for (const ok of [
      "1234abcd-12ab-34cd-56ef-1234567890ab",
      "mrk-1234abcd12ab34cd56ef1234567890ab",
      "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      "alias/shop/web",
      "arn:aws:kms:us-east-1:000000000000:alias/shop/web",
    ])
      expect(mutatePod(withKey(ok), "ns", SETTINGS).kind, ok).toBe("inject");
    for (const bad of ["shop/web", "alias/", "alias/with space", "arn:aws:kms:us-east-1:key/x", ""])
      expect(mutatePod(withKey(bad), "ns", SETTINGS).kind, bad).toBe("refuse");
  });

  it("never mutates mirror (static) pods", () => {
    const mirror: JsonObject = {
      metadata: {
        annotations: { "keyhaven.dev/inject": "true", "kubernetes.io/config.mirror": "abc" },
      },
      spec: { containers: [{ name: "app", image: "x" }] },
    };
    expect(mutatePod(mirror, "ns", SETTINGS).kind).toBe("skip");
  });

  it("refuses, rather than half-injects, a data-key annotation it cannot use", () => {
    const input: JsonObject = {
      metadata: {
        annotations: { "keyhaven.dev/inject": "true", "keyhaven.dev/data-key": "bad key" },
      },
      spec: { containers: [{ name: "app", image: "x" }] },
    };
    expect(mutatePod(input, "ns", SETTINGS)).toMatchObject({ kind: "refuse" });
  });
});
