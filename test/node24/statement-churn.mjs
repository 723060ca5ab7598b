// Run by test/node24-smoke.test.ts with `node --input-type=module -e` in the Node 24 app
// folder (so that the import resolves its better-sqlite3). An HTTP server prepares statements in its request
// handlers and drops them, with a 1 MiB young generation, so that the garbage collector
// finalizes Statements from inside socket callbacks. better-sqlite3 12 built against Node
// 24.19.0's headers aborts here ("Assertion failed: (env) != nullptr",
// nodejs/node#65446); built against 24.18.1's it prints "survived".
import Database from "better-sqlite3";
import http from "node:http";

const db = new Database(":memory:");
const server = http.createServer(async (req, res) => {
  req.resume();
  await new Promise((resolve) => req.on("end", resolve));
  for (let i = 0; i < 50; i++) db.prepare("SELECT ?").get(i);
  res.end("ok");
});
server.listen(0, "127.0.0.1", async () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const post = () =>
    new Promise((resolve, reject) => {
      const request = http.request({ port, method: "POST", agent }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      request.on("error", reject);
      request.end("x".repeat(1000));
    });
  for (let round = 0; round < 40; round++) await Promise.all(Array.from({ length: 50 }, post));
  server.close();
  agent.destroy();
  db.close();
  console.log("survived");
});
