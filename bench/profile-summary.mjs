/**
 * Summarises a V8 .cpuprofile (from `node bench/run.mjs --profile DIR`): the top
 * functions by self time and by inclusive time, as shares of the sampled time.
 *
 *   node bench/profile-summary.mjs DIR/CPU.*.cpuprofile [--top 30] [--filter text]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" }, filter: { type: "string" } },
});
const profile = JSON.parse(readFileSync(positionals[0], "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfSamples = new Map();
for (const id of profile.samples) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);
const total = profile.samples.length;

const label = (n) => {
  const f = n.callFrame;
  const file = f.url.replace(/^file:\/\/.*?\/(node_modules|dist|bench)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
};
const parents = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n.id);

const self = new Map();
const inclusive = new Map();
for (const [id, count] of selfSamples) {
  const node = byId.get(id);
  self.set(label(node), (self.get(label(node)) ?? 0) + count);
  // Count each function once per stack, however often it recurses.
  const seen = new Set();
  for (let at = id; at !== undefined; at = parents.get(at)) {
    const name = label(byId.get(at));
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + count);
  }
}
const top = Number(values.top);
const show = (title, map) => {
  console.log(`\n${title} (of ${total} samples)`);
  [...map]
    .filter(([name]) => !values.filter || name.includes(values.filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([name, count]) =>
      console.log(`${((100 * count) / total).toFixed(1).padStart(5)}%  ${name}`),
    );
};
show("self time", self);
show("inclusive time", inclusive);
