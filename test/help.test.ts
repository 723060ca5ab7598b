/**
 * `keyhaven <command> --help` and mistyped flags, through the built program
 * (dist/src/main.js): each command's help lists its flags, exits 0 and prints nothing
 * else; a flag every help lists is one its parser accepts; a typo names the closest flag.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { MAIN_JS } from "./support/server.js";

function keyhaven(...args: string[]) {
  const run = spawnSync(process.execPath, [MAIN_JS, ...args], {
    encoding: "utf8",
    env: { PATH: process.env["PATH"] ?? "" },
    timeout: 30_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const flagsIn = (text: string) => [
  ...new Set([...text.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]!)),
];

describe("keyhaven <command> --help", () => {
  const cases = {
    serve: ["listen", "data", "credentials", "tls-cert", "web-identity-jwks", "log-level"],
    controller: ["kms-endpoint", "metrics-listen", "leader-elect", "webhook-listen", "agent-image"],
    agent: ["dir", "plan", "data-key-store", "refresh-interval", "timeout"],
  } as const;

  for (const [command, expected] of Object.entries(cases)) {
    it(`${command} --help prints its flags and exits 0; so do -h and 'help ${command}'`, () => {
      const help = keyhaven(command, "--help");
      expect(help).toMatchObject({ code: 0, stderr: "" });
      expect(help.stdout).toMatch(new RegExp(`^Usage: keyhaven ${command} \\[flags\\]`));
      const flags = flagsIn(help.stdout);
      for (const flag of expected) expect(flags).toContain(flag);
      expect(keyhaven(command, "-h").stdout).toBe(help.stdout);
      expect(keyhaven("help", command).stdout).toBe(help.stdout);
      // Every flag the help lists is one the parser knows: with a stray argument after it,
      // parsing fails on the argument, never on the flag (and nothing starts).
      for (const flag of flags)
        expect(() => loadConfig([command, `--${flag}=x`, "stray"], {}), flag).toThrow(
          /^(Unexpected argument 'stray'|Option '--[a-z-]+' does not take an argument)/,
        );
    });
  }

  it("keyhaven --help lists the commands and how to get their flags", () => {
    const top = keyhaven("--help");
    expect(top.code).toBe(0);
    for (const command of ["serve", "controller", "agent", "version"])
      expect(top.stdout).toMatch(new RegExp(`^  ${command}\\s`, "m"));
    expect(top.stdout).toContain("keyhaven <command> --help prints that command's flags.");
  });
});

describe("a mistyped flag", () => {
  it("names the closest valid flag, exits 2, and starts nothing", () => {
    const run = keyhaven("serve", "--listn", "127.0.0.1:0");
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "keyhaven: Unknown option '--listn' for keyhaven serve; did you mean --listen? (keyhaven serve --help lists the flags)\n",
    );
    expect(keyhaven("controller", "--leader-elec", "false").stderr).toContain(
      "did you mean --leader-elect?",
    );
    expect(keyhaven("agent", "--time-out", "5").stderr).toContain("did you mean --timeout?");
  });

  it("without a close one, points at --help only", () => {
    expect(keyhaven("serve", "--colour", "blue").stderr).toBe(
      "keyhaven: Unknown option '--colour' for keyhaven serve (keyhaven serve --help lists the flags)\n",
    );
  });
});
