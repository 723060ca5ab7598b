import { describe, expect, it } from "vitest";
import { z } from "zod";
import { command, ConfigError, flag, flagUsage } from "./table.js";

const FLAGS = {
  port: flag({
    arg: "N",
    env: ["EXAMPLE_PORT", "PORT"],
    default: "8080",
    schema: z.string().regex(/^\d+$/, "a port number").transform(Number),
    help: "port to listen on",
  }),
  name: flag({ arg: "NAME", schema: z.string().min(1).optional(), help: "a name" }),
  quiet: flag({
    env: ["EXAMPLE_QUIET"],
    default: "false",
    schema: z.enum(["true", "false"]),
    help: "say less",
  }),
};
const example = command({
  name: "example",
  summary: "An example.",
  description: "Shows how a table becomes a command.",
  flags: FLAGS,
  build: (v) => ({ ...v }),
});

describe("a flag table", () => {
  it("reads the flag, else the first set variable (empty counts as unset), else the default", () => {
    expect(example.load([], {})).toEqual({ port: 8080, name: undefined, quiet: "false" });
    expect(example.load([], { EXAMPLE_PORT: "", PORT: "9000" }).port).toBe(9000);
    expect(example.load([], { EXAMPLE_PORT: "1", PORT: "9000" }).port).toBe(1);
    expect(example.load(["--port=2", "--quiet"], { EXAMPLE_PORT: "1" })).toMatchObject({
      port: 2,
      quiet: "true",
    });
    expect(Object.isFrozen(example.load([], {}))).toBe(true);
  });

  it("names the flag in a validation error, whichever source the value came from", () => {
    expect(() => example.load(["--port", "x"], {})).toThrow(
      new ConfigError("--port: a port number"),
    );
    expect(() => example.load([], { PORT: "x" })).toThrow(new ConfigError("--port: a port number"));
  });

  it("derives the usage: every flag with its placeholder, variables and default", () => {
    expect(flagUsage(FLAGS)).toBe(
      [
        "  --port N                      port to listen on [EXAMPLE_PORT, PORT] (default 8080)",
        "  --name NAME                   a name",
        "  --quiet                       say less [EXAMPLE_QUIET] (default false)",
        "",
      ].join("\n"),
    );
    expect(example.usage).toBe(
      `Usage: keyhaven example [flags]\n\nShows how a table becomes a command.\n\nFlags (environment variables in brackets):\n${flagUsage(FLAGS)}`,
    );
  });

  it("suggests the closest flag for a typo", () => {
    expect(() => example.load(["--prt", "1"], {})).toThrow(
      "Unknown option '--prt' for keyhaven example; did you mean --port? (keyhaven example --help lists the flags)",
    );
  });
});
