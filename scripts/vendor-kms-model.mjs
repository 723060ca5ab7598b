#!/usr/bin/env node
// Vendors botocore's KMS service model (service-2.json or .json.gz) into
// src/kms/protocol/kms-model.json, without the documentation strings.
// The model drives request validation and response serialization, so the
// server's constraints are AWS's own. Usage:
//   node scripts/vendor-kms-model.mjs "$(python3 -c 'import botocore,os;print(os.path.dirname(botocore.__file__))')/data/kms/2014-11-01/service-2.json.gz"
import { readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const source = process.argv[2];
if (!source) {
  console.error("usage: vendor-kms-model.mjs PATH/TO/service-2.json[.gz]");
  process.exit(2);
}
const raw = readFileSync(source);
const model = JSON.parse((source.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8"));
const strip = (value) => {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== "documentation" && k !== "documentationUrl")
        .map(([k, v]) => [k, strip(v)]),
    );
  }
  return value;
};
const out = strip(model);
writeFileSync(
  new URL("../src/kms/protocol/kms-model.json", import.meta.url),
  JSON.stringify(out, null, 1) + "\n",
);
console.log(
  `vendored ${Object.keys(out.operations).length} operations, ${Object.keys(out.shapes).length} shapes`,
);
