/**
 * A small, reusable benchmark harness: replay pre-built requests against a server
 * with autocannon, record every response time (autocannon's own histogram has 1 ms
 * resolution, too coarse for sub-millisecond calls), read the server's CPU time
 * around the run, and compare a subject with a baseline measured in the same run,
 * interleaved A B A B, reporting the median ratio. Benchmarks are never pass/fail.
 *
 * A target is { name, url, cpuMicros?(): Promise<number> } (see servers.mjs).
 * A scenario is { name, prepare(target): Promise<request[]>, check?(target): Promise<void> },
 * where a request is { method, path, headers, body } as autocannon replays it.
 */
import autocannon from "autocannon";
import { Agent, request as httpRequest } from "node:http";
import { performance } from "node:perf_hooks";

/** The q-quantile (0..1) of a sorted array, nearest-rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * One load run: `connections` keep-alive connections replaying `requests` for
 * `durationSeconds`, as fast as the server answers or, with `overallRate`, at that many
 * requests per second in all (a fixed offered load, for latency). Returns throughput, latency percentiles (ms), errors (any
 * non-2xx, connection error or timeout) and the server's CPU µs per request.
 */
export async function runLoad(
  target,
  requests,
  { connections = 50, durationSeconds = 5, overallRate } = {},
) {
  if (overallRate)
    return pacedLoad(target, requests, { connections, durationSeconds, overallRate });
  let times = new Float64Array(1 << 16);
  let count = 0;
  let non2xx = 0;
  const cpuBefore = target.cpuMicros ? await target.cpuMicros() : undefined;
  const instance = autocannon({
    url: target.url,
    connections,
    pipelining: 1,
    duration: durationSeconds,
    requests,
    ...(overallRate && { overallRate }),
  });
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    if (count === times.length) {
      const grown = new Float64Array(times.length * 2);
      grown.set(times);
      times = grown;
    }
    times[count++] = responseTime;
    if (statusCode < 200 || statusCode >= 300) non2xx++;
  });
  const result = await instance;
  return loadResult(target, {
    times: times.subarray(0, count),
    seconds: result.duration,
    failures: result.errors + result.timeouts + (result.mismatches ?? 0),
    non2xx,
    cpuBefore,
  });
}

/**
 * One run's figures from every response time (ms) it recorded over `seconds`. Counts the
 * responses on the target, warm-ups included (for sanity checks such as "one audit line
 * per request"), and reads its CPU time again for the CPU per request.
 */
async function loadResult(target, { times, seconds, failures, non2xx, cpuBefore }) {
  const count = times.length;
  target.responses = (target.responses ?? 0) + count;
  const cpuAfter = target.cpuMicros ? await target.cpuMicros() : undefined;
  const sorted = times.sort();
  return {
    target: target.name,
    requests: count,
    requestsPerSecond: count / seconds,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[count - 1] ?? NaN,
    errors: non2xx + failures,
    non2xx,
    cpuMicrosPerRequest:
      cpuBefore === undefined || count === 0 ? undefined : (cpuAfter - cpuBefore) / count,
  };
}

/**
 * An open-loop load: `overallRate` requests per second, evenly spaced (one every
 * 1/rate s, sent on the next free of `connections` keep-alive connections), each timed
 * from the moment it was sent, so a slow answer delays none of the requests after it and
 * time spent waiting for a free connection counts (the client's timer may send a request up
 * to a millisecond late; that is not the server's doing and is not counted). autocannon's
 * own rate limit sends each connection's share of a second back to back at the start of
 * the second: its latency is the queue of that burst, not the server's answer.
 */
async function pacedLoad(target, requests, { connections, durationSeconds, overallRate }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL(target.url);
  const total = Math.round(overallRate * durationSeconds);
  const times = new Float64Array(total);
  let count = 0;
  let non2xx = 0;
  let errors = 0;
  const cpuBefore = target.cpuMicros ? await target.cpuMicros() : undefined;
  const started = performance.now();
  const interval = 1000 / overallRate;
  await new Promise((resolve) => {
    let sent = 0;
    let settled = 0;
    const done = () => {
      if (++settled === total) resolve();
    };
    const send = ({ method, path, headers, body }) => {
      const sentAt = performance.now();
      const req = httpRequest(
        { host: url.hostname, port: url.port, method, path, headers, agent },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => {
            times[count++] = performance.now() - sentAt;
            if (res.statusCode < 200 || res.statusCode >= 300) non2xx++;
            done();
          });
        },
      );
      req.on("error", () => {
        errors++;
        done();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        send(requests[sent % requests.length]);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, started + sent * interval - now));
    };
    tick();
  });
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return loadResult(target, {
    times: times.subarray(0, count),
    seconds,
    failures: errors,
    non2xx,
    cpuBefore,
  });
}

/**
 * Measures every scenario on `baseline` and each of `subjects` (or the one
 * `subject`), interleaved A B (C …) A B for `rounds` rounds after one short warm-up
 * of each, and summarises each scenario and subject with medians over rounds and
 * the median of the per-round ratios subject/baseline.
 */
export async function compare({
  baseline,
  subject,
  subjects = [subject],
  scenarios,
  rounds = 5,
  durationSeconds = 5,
  warmupSeconds = 2,
  connections = 50,
  overallRate,
  log = () => {},
}) {
  const summaries = [];
  for (const scenario of scenarios) {
    for (const target of subjects) if (scenario.check) await scenario.check(target);
    const targets = [baseline, ...subjects];
    const runs = targets.map(() => []);
    const load = async (target, seconds) =>
      runLoad(target, await scenario.prepare(target), {
        connections,
        durationSeconds: seconds,
        overallRate,
      });
    if (warmupSeconds > 0) for (const target of targets) await load(target, warmupSeconds);
    for (let round = 1; round <= rounds; round++) {
      for (const [i, target] of targets.entries()) {
        const run = await load(target, durationSeconds);
        runs[i].push(run);
        log(`${scenario.name} round ${round}/${rounds} ${target.name}: ${formatRun(run)}`);
      }
    }
    for (const [i, target] of subjects.entries()) {
      summaries.push(summarise(scenario.name, target.name, runs[0], runs[i + 1]));
    }
  }
  return summaries;
}

function summarise(scenario, subjectName, baselineRuns, subjectRuns) {
  const side = (list) => ({
    requestsPerSecond: median(list.map((r) => r.requestsPerSecond)),
    p50: median(list.map((r) => r.p50)),
    p99: median(list.map((r) => r.p99)),
    errors: list.reduce((n, r) => n + r.errors, 0),
    requests: list.reduce((n, r) => n + r.requests, 0),
    cpuMicrosPerRequest: median(
      list.map((r) => r.cpuMicrosPerRequest).filter((v) => v !== undefined),
    ),
  });
  const ratios = subjectRuns.map((r, i) => r.requestsPerSecond / baselineRuns[i].requestsPerSecond);
  return {
    scenario,
    subjectName,
    baseline: side(baselineRuns),
    subject: side(subjectRuns),
    ratio: median(ratios),
    ratios,
    runs: { baseline: baselineRuns, subject: subjectRuns },
  };
}

const fixed = (v, digits) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");

export function formatRun(run) {
  return (
    `${fixed(run.requestsPerSecond, 0)} req/s, p50 ${fixed(run.p50, 3)} ms, p99 ${fixed(run.p99, 3)} ms, ` +
    `errors ${run.errors}, server CPU ${fixed(run.cpuMicrosPerRequest, 1)} µs/req`
  );
}

/** A plain-text table of compare() summaries. */
export function formatSummaries(summaries, { baselineName = "baseline" } = {}) {
  const header = [
    "scenario",
    "server",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "CPU µs/req",
    `ratio to ${baselineName}`,
  ];
  const rows = [];
  const row = (scenario, name, side, ratio) =>
    rows.push([
      scenario,
      name,
      fixed(side.requestsPerSecond, 0),
      fixed(side.p50, 3),
      fixed(side.p99, 3),
      String(side.errors),
      fixed(side.cpuMicrosPerRequest, 1),
      ratio,
    ]);
  let previous;
  for (const s of summaries) {
    if (s.scenario !== previous) row(s.scenario, baselineName, s.baseline, "1");
    previous = s.scenario;
    const rounds = s.ratios.map((r) => fixed(r, 2)).join(" ");
    row(s.scenario, s.subjectName, s.subject, `${fixed(s.ratio, 2)} (rounds: ${rounds})`);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
