/**
 * The plain-HTTP listener of a long-running role: Prometheus `/metrics` from a
 * prom-client registry, `/healthz` (the process answers) and `/readyz` (503 until
 * `ready()` says so, e.g. until the informer caches have synced).
 */
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export function listenProbes(
  on: { readonly host: string; readonly port: number },
  probes: { readonly registry: Registry; readonly ready: () => boolean; readonly notReady: string },
): Promise<Server> {
  const { registry } = probes;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      return void res.end("ok\n");
    }
    if (path === "/readyz") {
      const ok = probes.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      return void res.end(ok ? "ok\n" : `${probes.notReady}\n`);
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(on.port, on.host, () => resolve(server));
  });
}
