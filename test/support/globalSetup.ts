/**
 * Builds dist/ once, so integration tests can run the real `keyhaven` program as a child
 * process. Type errors do not stop the build (tsc still emits, and `npm run typecheck`
 * reports them); only a build that produced no program fails the suite.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const main = join(root, "dist", "src", "main.js");
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"],
    { cwd: root, stdio: "inherit" },
  );
  if (result.error) throw result.error;
  if (!existsSync(main) || statSync(main).mtimeMs < started - 1000) {
    throw new Error(`building dist/ failed (tsc exit ${result.status}); see the output above`);
  }
  if (result.status !== 0) {
    process.stderr.write(
      `warning: tsc reported type errors (exit ${result.status}); dist/ was emitted anyway\n`,
    );
  }
}
