/**
 * The server side of a benchmark: a server under test runs in its own child process
 * (so the load generator never shares its event loop or its CPU accounting) and
 * answers a tiny IPC protocol: it announces `{ ready: url, info }`, then answers
 * `{ cmd: "cpu" }` with its process.cpuUsage() and `{ cmd: "stop" }` by shutting down.
 */
import process from "node:process";

/**
 * Runs `start` in this child process and serves the IPC protocol.
 * `start` resolves to `{ url, info?, stop(): Promise<object | void> }`.
 */
export function runChild(start) {
  if (!process.send)
    throw new Error("bench servers run as forked children (see bench/lib/servers.mjs)");
  let running;
  // The parent is gone (finished or crashed): never outlive it.
  process.on("disconnect", () => process.exit(0));
  process.on("message", (message) => {
    void (async () => {
      if (message?.cmd === "cpu") {
        process.send({ cpu: process.cpuUsage(), memory: process.memoryUsage().rss });
      } else if (message?.cmd === "stop") {
        const summary = running ? await running.stop() : undefined;
        process.send({ stopped: true, summary: summary ?? {} }, () => process.exit(0));
      }
    })().catch((err) => {
      process.send({ error: String(err?.stack ?? err) });
    });
  });
  start(JSON.parse(process.argv[2] ?? "{}"))
    .then((server) => {
      running = server;
      process.send({ ready: server.url, info: server.info ?? {} });
    })
    .catch((err) => {
      process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
    });
}
