/**
 * The structural rules of .dependency-cruiser.mjs (docs/architecture.md, "Layers"), run
 * by `npm run lint`: each rule fires on a small tree built to break it (type-only imports
 * included), and src/ breaks none of them.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, tempDir } from "./support/server.js";

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

const CONFIG = join(REPO_ROOT, ".dependency-cruiser.mjs");
/** One cruise of src/ is ~7 s of CPU; on a shared, loaded machine its wall time is several times that. */
const CRUISE_MS = 150_000;

/** Every violation of the project's rules in `cwd`'s src/, as `rule: from → to`. */
function cruise(cwd: string): string[] {
  const run = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs"),
      "src",
      "--config",
      CONFIG,
      "--output-type",
      "json",
    ],
    { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: CRUISE_MS },
  );
  // The exit code is the number of errors: the JSON on stdout is the answer either way.
  if (!run.stdout) throw new Error(`depcruise printed nothing: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as { summary: { violations: Violation[] } };
  return result.summary.violations.map(describeViolation).sort();
}

const describeViolation = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.to}`;

describe("structure rules", () => {
  it(
    "fire on a tree that breaks each of them, type-only imports included",
    { timeout: CRUISE_MS },
    async () => {
      const dir = tempDir("keyhaven-structure-");
      const files: Record<string, string> = {
        "tsconfig.json": JSON.stringify({
          compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true },
          include: ["src", "test"],
        }),
        // A cycle of types only (reported once, from its first module).
        "src/kms/keyService.ts": `import type { Op } from "./operation.js";\nexport interface KeyService { ops: Op[] }\n`,
        "src/kms/operation.ts": `import type { KeyService } from "./keyService.js";\nexport interface Op { service: KeyService }\n`,
        "src/kms/usesKube.ts": `export { kube } from "../kube/client.js";\n`,
        "src/kube/client.ts": `export const kube = 1;\n`,
        "src/kube/usesController.ts": `export { reconcile } from "../controller/reconcile.js";\n`,
        "src/controller/reconcile.ts": `export { admit } from "../webhook/admit.js";\nexport const reconcile = 1;\n`,
        "src/webhook/admit.ts": `export { serve } from "../cmd/serve.js";\nexport const admit = 1;\n`,
        "src/agent/run.ts": `export type { KeyService } from "../kms/keyService.js";\n`,
        "src/config/flags.ts": `export { kube } from "../kube/client.js";\n`,
        "src/observability/logger.ts": `export { kube } from "../kube/client.js";\n`,
        // Allowed: the foundation's two modules use each other.
        "src/time.ts": `export { kube as k } from "./observability/logger.js";\n`,
        "src/api/types.ts": `export { kube } from "../kube/client.js";\n`,
        "src/cmd/serve.ts": `export { fake } from "../../test/support/fake.js";\nexport const serve = 1;\n`,
        // Allowed: the entry point imports a command; a unit test imports test support.
        "src/main.ts": `export { serve } from "./cmd/serve.js";\n`,
        "src/kms/keyService.test.ts": `export { fake } from "../../test/support/fake.js";\n`,
        "test/support/fake.ts": `export const fake = 1;\n`,
      };
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), text);
      }

      const violations = cruise(dir);

      expect(violations).toEqual(
        [
          "no-cycle: src/kms/keyService.ts → src/kms/operation.ts",
          "no-test-imports-in-src: src/cmd/serve.ts → test/support/fake.ts",
          "config-imports-nothing-of-the-app: src/config/flags.ts → src/kube/client.ts",
          "foundation-imports-nothing-of-the-app: src/observability/logger.ts → src/kube/client.ts",
          "kms-core-stays-below-kubernetes-and-start-up: src/kms/usesKube.ts → src/kube/client.ts",
          "kube-stays-below-the-controller: src/kube/usesController.ts → src/controller/reconcile.ts",
          "controller-is-a-client-of-the-key-service: src/controller/reconcile.ts → src/webhook/admit.ts",
          "webhook-and-agent-stay-apart-from-the-controller: src/agent/run.ts → src/kms/keyService.ts",
          "resource-types-at-the-bottom: src/api/types.ts → src/kube/client.ts",
          "api-re-exports-nothing: src/api/types.ts → src/kube/client.ts",
          "only-entry-points-import-commands: src/webhook/admit.ts → src/cmd/serve.ts",
        ].sort(),
      );
      // A rule added to the configuration gets a case here.
      const { default: config } = (await import(pathToFileURL(CONFIG).href)) as {
        default: { forbidden: { name: string }[] };
      };
      const fired = new Set(violations.map((v) => v.slice(0, v.indexOf(":"))));
      expect([...fired].sort()).toEqual(config.forbidden.map((rule) => rule.name).sort());
    },
  );

  it("src/ breaks none of them", { timeout: CRUISE_MS }, () => {
    expect(cruise(REPO_ROOT), "fix the imports (docs/architecture.md, Layers)").toEqual([]);
  });
});
