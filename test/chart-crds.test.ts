/**
 * CRDs and sample resources: the chart's crds/ is a byte-for-byte copy of the top-level
 * crds/ (the single source, DESIGN.md "Packaging"); every CRD is a valid
 * CustomResourceDefinition; every manifest in examples/ is valid against the CRD
 * schemas (custom resources) or the Kubernetes schemas (built-in kinds).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CHART,
  crdSchemaToJsonSchema,
  crdValidators,
  parseManifests,
  ROOT,
  validateObject,
  yamlFiles,
} from "./chart/support.js";
import { Ajv } from "ajv";

const TOP_CRDS = join(ROOT, "crds");
const CHART_CRDS = join(CHART, "crds");
const EXAMPLES = join(ROOT, "examples");

describe("CRDs", () => {
  it("the chart's crds/ holds exactly the files of crds/, byte for byte", () => {
    expect(yamlFiles(TOP_CRDS)).toHaveLength(4);
    expect(yamlFiles(CHART_CRDS)).toEqual(yamlFiles(TOP_CRDS));
    for (const file of yamlFiles(TOP_CRDS))
      expect(
        readFileSync(join(CHART_CRDS, file)).equals(readFileSync(join(TOP_CRDS, file))),
        file,
      ).toBe(true);
  });

  it("every CRD is a valid CustomResourceDefinition with a structural schema", () => {
    for (const file of yamlFiles(TOP_CRDS)) {
      for (const crd of parseManifests(readFileSync(join(TOP_CRDS, file), "utf8"), file)) {
        expect(crd.kind).toBe("CustomResourceDefinition");
        expect(validateObject(crd)).toEqual([]);
      }
    }
    const validators = crdValidators(TOP_CRDS);
    expect([...validators.keys()]).toEqual(
      expect.arrayContaining([
        "keyhaven.dev/v1alpha1/KmsKey",
        "keyhaven.dev/v1alpha1/KmsAlias",
        "keyhaven.dev/v1alpha1/KmsGrant",
      ]),
    );
  });
});

describe("examples/", () => {
  it("every manifest is valid against the CRD or Kubernetes schemas", () => {
    const validators = crdValidators(TOP_CRDS);
    let customResources = 0;
    for (const file of yamlFiles(EXAMPLES)) {
      for (const obj of parseManifests(readFileSync(join(EXAMPLES, file), "utf8"), file)) {
        if (obj.apiVersion.startsWith("keyhaven.dev/")) customResources++;
        expect(
          validateObject(obj, validators),
          `${file}: ${obj.kind}/${obj.metadata?.name}`,
        ).toEqual([]);
      }
    }
    expect(customResources).toBeGreaterThan(0);
  });
});

describe("CRD schema → JSON Schema", () => {
  const crdSchema = {
    type: "object",
    properties: {
      spec: {
        type: "object",
        required: ["size"],
        properties: {
          size: { "x-kubernetes-int-or-string": true },
          note: { type: "string", nullable: true },
          days: { type: "integer", minimum: 7, maximum: 30, format: "int32" },
          mode: {
            type: "string",
            enum: ["A", "B"],
            "x-kubernetes-validations": [{ rule: "self == oldSelf" }],
          },
          free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
          tags: { type: "object", additionalProperties: { type: "string" } },
        },
      },
    },
  };
  const validate = new Ajv({ strict: false, allErrors: true }).compile(
    crdSchemaToJsonSchema(crdSchema) as object,
  );

  it("accepts what the API server accepts", () => {
    for (const spec of [
      { size: 3 },
      { size: "50%", note: null, days: 7, mode: "A" },
      { size: 1, free: { anything: { goes: true } }, tags: { a: "b" } },
    ])
      expect(validate({ spec }), JSON.stringify(validate.errors)).toBe(true);
  });

  it("rejects unknown fields, wrong types, enums and ranges", () => {
    for (const spec of [
      { size: 1, sise: 2 },
      { size: true },
      { size: 1, days: 31 },
      { size: 1, mode: "C" },
      { size: 1, tags: { a: 1 } },
      { note: "no size" },
    ])
      expect(validate({ spec }), JSON.stringify(spec)).toBe(false);
  });
});
