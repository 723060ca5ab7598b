/**
 * The baseline: a bare Node http server that reads and parses the same JSON body
 * the key service gets and answers a small JSON document, on keep-alive connections.
 */
import { createServer } from "node:http";
import { runChild } from "../lib/child.mjs";

runChild(async () => {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      let answer;
      try {
        const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        answer = JSON.stringify({ ok: true, fields: Object.keys(input).length });
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end('{"__type":"SerializationException"}');
        return;
      }
      res.writeHead(200, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(answer),
      });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
