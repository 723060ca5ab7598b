/**
 * Benchmarks are never run by the tests, but they must not break silently when a source
 * file moves: every import of every bench module resolves, and whatever a benchmark takes
 * of Keyhaven comes from one of the bench entries (src/bench/*.ts, built to
 * dist/src/bench/*.js; test/support/bench.ts for the controller benches) and is exported
 * there. The modules are read, not run (running one is a benchmark).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./support/server.js";

const BENCH = join(REPO_ROOT, "bench");

/** The entries, by the path a bench names them with (after dist/ or the compiled tree). */
const ENTRIES: Record<string, () => Promise<Record<string, unknown>>> = {
  "src/bench/keyService.js": () => import("../src/bench/keyService.js"),
  "src/bench/webhook.js": () => import("../src/bench/webhook.js"),
  "src/bench/controller.js": () => import("../src/bench/controller.js"),
  "src/bench/kubernetesStore.js": () => import("../src/bench/kubernetesStore.js"),
  "test/support/bench.js": () => import("./support/bench.js"),
};
const entryIn = (text: string) =>
  Object.keys(ENTRIES).find((entry) => text === entry || text.endsWith(`/${entry}`));

interface BenchImport {
  file: string;
  line: number;
  /** The specifier when it is a plain string; otherwise the entry named inside it, if any. */
  specifier: string | undefined;
  entry: string | undefined;
  /** The names taken from it (import {a}, const {a} = await import()); [] for a namespace. */
  names: string[];
}

function benchModules(dir = BENCH): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? benchModules(join(dir, e.name))
      : e.name.endsWith(".mjs")
        ? [join(dir, e.name)]
        : [],
  );
}

const parse = (file: string) =>
  ts.createSourceFile(
    file,
    readFileSync(file, "utf8"),
    ts.ScriptTarget.Latest,
    true,
    ts.ScriptKind.JS,
  );

function importsOf(file: string): BenchImport[] {
  const source = parse(file);
  const found: BenchImport[] = [];
  const add = (node: ts.Node, argument: ts.Expression, names: string[]) => {
    const texts: string[] = [];
    const collect = (n: ts.Node): void => {
      if (ts.isStringLiteralLike(n) || ts.isTemplateLiteralToken(n)) texts.push(n.text);
      n.forEachChild(collect);
    };
    collect(argument);
    const plain = ts.isStringLiteralLike(argument) ? argument.text : undefined;
    found.push({
      file: relative(REPO_ROOT, file),
      line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1,
      specifier: plain,
      entry: texts.map(entryIn).find(Boolean),
      names,
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const bindings = node.importClause?.namedBindings;
      const names =
        bindings && ts.isNamedImports(bindings)
          ? bindings.elements.map((e) => (e.propertyName ?? e.name).text)
          : [];
      if (node.importClause?.name) names.push("default");
      add(node, node.moduleSpecifier, names);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      // const { a, b } = await import(...)
      const declaration = ts.isAwaitExpression(node.parent) ? node.parent.parent : undefined;
      const names =
        declaration &&
        ts.isVariableDeclaration(declaration) &&
        ts.isObjectBindingPattern(declaration.name)
          ? declaration.name.elements.map((e) => (e.propertyName ?? e.name).getText(source))
          : [];
      add(node, node.arguments[0]!, names);
    }
    node.forEachChild(visit);
  };
  visit(source);
  return found;
}

/** The names a bench module exports (export function/const/class, export { a }). */
function exportsOf(file: string): Set<string> {
  const names = new Set<string>();
  for (const statement of parse(file).statements) {
    const exported = ts.canHaveModifiers(statement)
      ? ts.getModifiers(statement)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
      : false;
    if (exported && ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) names.add(d.name.getText());
    } else if (
      exported &&
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement))
    ) {
      if (statement.name) names.add(statement.name.text);
    } else if (
      ts.isExportDeclaration(statement) &&
      statement.exportClause &&
      ts.isNamedExports(statement.exportClause)
    ) {
      for (const e of statement.exportClause.elements) names.add(e.name.text);
    }
  }
  return names;
}

const imports = benchModules().flatMap(importsOf);

describe("bench/ imports", () => {
  it("finds the bench modules and their imports", () => {
    // The parser reads what it should: a few imports known to be there.
    expect(imports.length).toBeGreaterThan(50);
    expect(imports).toContainEqual(
      expect.objectContaining({ file: "bench/policyParts.mjs", entry: "src/bench/keyService.js" }),
    );
  });

  it("take Keyhaven only from a bench entry, and only names it exports", async () => {
    const problems: string[] = [];
    for (const i of imports) {
      const where = `${i.file}:${i.line}`;
      if (i.entry !== undefined) {
        const exported = await ENTRIES[i.entry]!();
        for (const name of i.names)
          if (!(name in exported)) problems.push(`${where}: ${i.entry} does not export ${name}`);
      } else if (i.specifier === undefined || i.specifier.includes("dist/")) {
        problems.push(
          `${where}: import ${i.specifier ?? "(a computed path)"} through an entry in src/bench/ (or test/support/bench.ts)`,
        );
      }
    }
    expect(problems).toEqual([]);
  });

  it("resolve every other import: bench files with the names they export, packages, node builtins", async () => {
    const problems: string[] = [];
    for (const i of imports) {
      const spec = i.specifier;
      if (spec === undefined || i.entry !== undefined) continue;
      const where = `${i.file}:${i.line}`;
      if (spec.startsWith(".")) {
        const target = resolve(dirname(join(REPO_ROOT, i.file)), spec);
        if (!existsSync(target)) {
          problems.push(`${where}: ${spec} does not exist`);
          continue;
        }
        const exported = exportsOf(target);
        for (const name of i.names)
          if (!exported.has(name)) problems.push(`${where}: ${spec} does not export ${name}`);
      } else if (spec.startsWith("node:") || builtinModules.includes(spec)) {
        if (!builtinModules.includes(spec.replace(/^node:/, "")))
          problems.push(`${where}: no Node module ${spec}`);
      } else {
        const loaded = (await import(spec).catch(() => undefined)) as
          Record<string, unknown> | undefined;
        if (!loaded) problems.push(`${where}: package ${spec} does not load`);
        else
          for (const name of i.names)
            if (!(name in loaded)) problems.push(`${where}: ${spec} does not export ${name}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("the entries are built into dist/ with the same names", async () => {
    for (const entry of Object.keys(ENTRIES).filter((e) => e.startsWith("src/"))) {
      const built = (await import(join(REPO_ROOT, "dist", entry))) as Record<string, unknown>;
      expect(Object.keys(built).sort(), entry).toEqual(Object.keys(await ENTRIES[entry]!()).sort());
    }
  });
});
