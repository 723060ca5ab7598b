/**
 * Server side of bench/admission.mjs, in a child process: either the real admission
 * webhook (through dist/src/bench/webhook.js) or a bare HTTPS echo that reads and parses the
 * same AdmissionReview body and answers a small AdmissionReview — same certificate,
 * same TLS settings, keep-alive.
 */
import { createServer } from "node:https";
import { pino } from "pino";
import { runChild } from "./lib/child.mjs";

runChild(async ({ mode, cert, key, settings }) => {
  let server;
  if (mode === "webhook") {
    const { WebhookServer, cachedNamespaceLabels } = await import("../dist/src/bench/webhook.js");
    const namespaces = new Map([["shop", { "keyhaven.dev/injection": "enabled" }]]);
    const webhook = new WebhookServer({
      certificate: { cert, key },
      logger: pino({ level: "silent" }),
      settings,
      ownNamespace: "keyhaven",
      // The production path: a cached lookup bounded by a timeout.
      namespaceLabels: cachedNamespaceLabels(async (n) => namespaces.get(n)),
    });
    await webhook.listen("127.0.0.1", 0);
    server = webhook.server;
  } else {
    server = createServer({ cert, key, minVersion: "TLSv1.2" }, (req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        const text = JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: { uid: review.request.uid, allowed: true },
        });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
        });
        res.end(text);
      });
    });
    server.keepAliveTimeout = 65_000;
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  }
  const { port } = server.address();
  return {
    url: `https://127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
