/**
 * crds/*.yaml from ./schemas.ts. Regenerate after a schema change with
 * `npm run build && node -e "import('./dist/src/api/v1alpha1/crdFiles.js').then(m => m.writeCrds('crds'))"`.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { crdManifest } from "./schemas.js";
import { KINDS, GROUP, type KindName } from "./types.js";

export const crdFileName = (kind: KindName) => `${GROUP}_${KINDS[kind].plural}.yaml`;

export function crdYaml(kind: KindName): string {
  return (
    "# Generated from src/api/v1alpha1/schemas.ts; do not edit by hand.\n" +
    stringify(crdManifest(kind), { lineWidth: 0 })
  );
}

export function writeCrds(dir: string): void {
  for (const kind of Object.keys(KINDS) as KindName[])
    writeFileSync(join(dir, crdFileName(kind)), crdYaml(kind));
}
