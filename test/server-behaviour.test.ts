/**
 * HTTP-level behaviour of the key service, in-process (startKeyService) where a fake clock
 * or access to the server object is needed: body limits, clock skew against the server's
 * clock, keep-alive, graceful shutdown with a request in flight.
 */
import { request as httpRequest } from "node:http";
import { CreateKeyCommand, ListKeysCommand } from "@aws-sdk/client-kms";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../src/time.js";
import { failure } from "./support/errors.js";
import { Sha256 } from "./support/sha256.js";
import { kmsClient, signedFetch, startInProcess, type InProcessServer } from "./support/server.js";
import { ManualClock } from "./support/manualClock.js";

const servers: InProcessServer[] = [];
async function start(clock?: Clock): Promise<InProcessServer> {
  const s = await startInProcess(clock ? { clock } : {});
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** Resolves once `condition` holds, checking after each turn of the event loop (no timers). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !condition(); i++)
    await new Promise<void>((resolve) => setImmediate(resolve));
  expect(condition()).toBe(true);
}

describe("the HTTP server", () => {
  it("refuses a body over the limit with RequestEntityTooLargeException (413)", async () => {
    const server = await start();
    const res = await signedFetch(server, {
      target: "ListKeys",
      body: JSON.stringify({ Marker: "x".repeat(600 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(res.json?.__type).toBe("RequestEntityTooLargeException");
  });

  it("judges clock skew against its own clock", async () => {
    const clock = new ManualClock(Date.now() + 6 * 60 * 1000);
    const server = await start(clock);
    const kms = kmsClient(server);
    const ahead = await failure(kms.send(new ListKeysCommand({})));
    expect(ahead.name).toBe("InvalidSignatureException");
    expect(ahead.message).toMatch(/^Signature expired: /);
    clock.set(Date.now() - 6 * 60 * 1000);
    const behind = await failure(kms.send(new ListKeysCommand({})));
    expect(behind.message).toMatch(/^Signature not yet current: /);
    clock.set(Date.now() + 4 * 60 * 1000);
    expect((await kms.send(new ListKeysCommand({}))).Keys).toEqual([]);
    kms.destroy();
  });

  it("serves many calls over one keep-alive connection", async () => {
    const server = await start();
    const kms = kmsClient(server);
    const sockets = new Set<unknown>();
    server.running.server.server.on("connection", (socket) => sockets.add(socket));
    for (let i = 0; i < 20; i++) await kms.send(new CreateKeyCommand({}));
    expect(sockets.size).toBe(1);
    kms.destroy();
  });

  it("finishes a request in flight when stopping, then refuses new connections", async () => {
    const server = await start();
    const url = new URL(server.url);
    const body = Buffer.from(JSON.stringify({ Limit: 10 }));
    const signer = new SignatureV4({
      service: "kms",
      region: server.region,
      credentials: server.credentials,
      sha256: Sha256,
    });
    const signed = await signer.sign({
      method: "POST",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: "/",
      headers: {
        host: url.host,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "TrentService.ListKeys",
        "content-length": String(body.length),
      },
      body,
    });
    let pending: (() => void) | undefined;
    const response = new Promise<{ status: number; text: string; connection: string | undefined }>(
      (resolve, reject) => {
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            method: "POST",
            path: "/",
            headers: signed.headers,
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8").on("data", (s: string) => (text += s));
            res.on("end", () =>
              resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }),
            );
          },
        );
        req.on("error", reject);
        req.write(body.subarray(0, 5));
        pending = () => req.end(body.subarray(5));
      },
    );
    const kmsServer = server.running.server;
    await until(() => kmsServer.inFlight === 1);

    const stopped = server.running.stop();
    servers.splice(servers.indexOf(server), 1);
    pending!();
    const answer = await response;
    expect(answer.status).toBe(200);
    // The busy keep-alive connection is released with its answer, not held until the
    // client's idle timeout.
    expect(answer.connection).toBe("close");
    expect(JSON.parse(answer.text)).toMatchObject({ Keys: [], Truncated: false });
    await stopped;
    expect(kmsServer.inFlight).toBe(0);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
