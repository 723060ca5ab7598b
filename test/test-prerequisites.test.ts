/**
 * scripts/test-prerequisites.sh, the first step of `npm test`: on a machine without the
 * tools (here: a PATH holding only what the script itself runs) and without apt-get, it
 * names every Debian package to install and stops with exit 1; on this machine, where
 * `npm test` already ran it, it finds everything.
 */
import { execFile } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { REPO_ROOT, tempDir } from "./support/server.js";

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, "scripts", "test-prerequisites.sh");

it("names every missing package in one apt-get line and exits 1 before any test", async () => {
  const bin = join(tempDir("keyhaven-prereq-"), "bin");
  mkdirSync(bin);
  for (const tool of ["bash", "dirname", "id"]) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  const result = await run("/usr/bin/bash", [SCRIPT], { env: { PATH: bin } }).then(
    () => ({ code: 0, stderr: "" }),
    (err: { code: number; stderr: string }) => err,
  );
  expect(result.code).toBe(1);
  // p11-kit-modules is found by its library file, which this machine has.
  expect(result.stderr).toMatch(
    /sudo apt-get install -y --no-install-recommends openssl curl etcd-server awscli python3-boto3 unzip softhsm2 p11-kit( p11-kit-modules)? python3 make g\+\+\n/,
  );
});

it("finds every tool on this machine", async () => {
  const { stdout } = await run("bash", [SCRIPT], { env: process.env });
  expect(stdout).toContain("test prerequisites: all present");
});
