/**
 * Keyhaven's XKS client (src/kms/xks/client.ts) against Keyhaven's XKS proxy on a real key
 * service over HTTPS, and against servers that misbehave (silent, refusing, untrusted,
 * answering junk or a wrong CDIV): each failure becomes the AWS KMS exception the spec's
 * "KMS Considerations" table gives for the calling operation.
 */
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { DisableKeyCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { XksClient, type XksClientOptions } from "../src/kms/xks/client.js";
import { kmsErrorFor, XksProxyError, type XksCaller } from "../src/kms/xks/kmsErrors.js";
import { selfSignedCertificate, tempDir } from "./support/server.js";
import { startXksProxy, XKS_PREFIX, type XksProxyFixture } from "./support/xksProxy.js";
import { xksCredential } from "./support/xksSpecClient.js";

let fixture: XksProxyFixture;
const clients: XksClient[] = [];
const servers: (TcpServer | HttpsServer)[] = [];

const meta = {
  awsPrincipalArn: "arn:aws:iam::111122223333:user/app",
  kmsKeyArn: "arn:aws:kms:us-east-1:111122223333:key/0b4a1c2d-0000-4000-8000-000000000000",
  kmsOperation: "Encrypt",
  kmsRequestId: "req-1",
};
const health = { kmsOperation: "ConnectCustomKeyStore", kmsRequestId: "req-h" };

function client(overrides: Partial<XksClientOptions> = {}): XksClient {
  const c = new XksClient({
    endpoint: fixture.server.url.replace("127.0.0.1", "localhost"),
    uriPath: `${XKS_PREFIX}/kms/xks/v1`,
    credential: fixture.credential,
    region: "us-east-1",
    ca: fixture.ca,
    timeoutMs: 10_000,
    ...overrides,
  });
  clients.push(c);
  return c;
}

/** The failure of `call`, and the KMS exception each calling operation would answer. */
async function failed(call: Promise<unknown>) {
  const err = await call.then(
    () => {
      throw new Error("expected the XKS call to fail");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(XksProxyError);
  const e = err as XksProxyError;
  const as = (caller: XksCaller) => {
    const k = kmsErrorFor(e, caller);
    return { code: k.code, status: k.status, message: k.message };
  };
  return { failure: e.failure, as };
}

beforeAll(async () => {
  fixture = await startXksProxy();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) s.close();
  await fixture?.stop();
});

describe("against Keyhaven's proxy", () => {
  it("GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt", async () => {
    const xks = client();
    const h = await xks.getHealthStatus(health);
    expect(h.ekmFleetDetails[0]!.healthStatus).toBe("ACTIVE");
    expect(await xks.getKeyMetadata("xks-demo", meta)).toEqual({
      keySpec: "AES_256",
      keyUsage: ["ENCRYPT", "DECRYPT"],
      keyStatus: "ENABLED",
    });
    const aad = Buffer.from("kms-header-and-context");
    const data = Buffer.from("a 32-byte data key, more or less");
    const sealed = await xks.encrypt(fixture.keyId, data, aad, meta);
    expect(sealed.ciphertext.length).toBe(data.length);
    expect(
      await xks.decrypt("xks-demo", sealed, aad, { ...meta, kmsOperation: "Decrypt" }),
    ).toEqual(data);
    expect(
      (await failed(xks.decrypt(fixture.keyId, sealed, undefined, meta))).as("Cryptographic"),
    ).toMatchObject({ code: "KMSInvalidStateException", status: 409 });
  });

  it("a disabled key: KMSInvalidStateException for crypto, XksKeyInvalidConfigurationException for CreateKey", async () => {
    const key = await fixture.newKey();
    await fixture.kms.send(new DisableKeyCommand({ KeyId: key.id }));
    const xks = client();
    expect((await xks.getKeyMetadata(key.id, meta)).keyStatus).toBe("DISABLED");
    const f = await failed(xks.encrypt(key.id, Buffer.from("x"), undefined, meta));
    expect(f.failure).toMatchObject({
      kind: "proxy",
      errorName: "InvalidStateException",
      status: 400,
    });
    expect(f.as("Cryptographic").code).toBe("KMSInvalidStateException");
    expect(f.as("CreateKey").code).toBe("XksKeyInvalidConfigurationException");
    expect(f.as("Cryptographic").message).toMatch(/not enabled in the external key manager/);
  });

  it("an unknown key: XksKeyNotFoundException for CreateKey", async () => {
    const f = await failed(client().getKeyMetadata("no-such-key", meta));
    expect(f.failure).toMatchObject({ errorName: "KeyNotFoundException", status: 404 });
    expect(f.as("CreateKey").code).toBe("XksKeyNotFoundException");
  });

  it("a wrong credential: XksProxyIncorrectAuthenticationCredentialException for the key store", async () => {
    const f = await failed(client({ credential: xksCredential() }).getHealthStatus(health));
    expect(f.failure).toMatchObject({ errorName: "AuthenticationFailedException", status: 401 });
    expect(f.as("CustomKeyStore").code).toBe("XksProxyIncorrectAuthenticationCredentialException");
    expect(f.as("CreateKey").code).toBe("CustomKeyStoreInvalidStateException");
    // The proxy's own errorMessage never reaches the KMS caller.
    expect(f.as("CustomKeyStore").message).not.toContain(
      (f.failure as { message?: string }).message,
    );
  });

  it("a wrong XksProxyUriPath: XksProxyInvalidConfigurationException", async () => {
    const f = await failed(client({ uriPath: "/tenant-b/kms/xks/v1" }).getHealthStatus(health));
    expect(f.failure).toMatchObject({ errorName: "InvalidUriPathException", status: 404 });
    expect(f.as("CustomKeyStore").code).toBe("XksProxyInvalidConfigurationException");
  });
});

describe("against proxies that fail", () => {
  const listen = async (s: TcpServer | HttpsServer) => {
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return `https://localhost:${(s.address() as { port: number }).port}`;
  };
  let tls: { cert: Buffer; key: Buffer };
  beforeAll(() => {
    const files = selfSignedCertificate(tempDir("keyhaven-xks-bad-"));
    tls = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
  });
  const answering = (status: number, body: string) =>
    listen(
      createHttpsServer(tls, (req, res) => {
        req.resume();
        req.on("end", () =>
          res.writeHead(status, { "content-type": "application/json" }).end(body),
        );
      }),
    );

  it("silent: a timeout within the client's limit, XksProxyUriUnreachableException", async () => {
    const endpoint = await listen(createTcpServer(() => {}));
    const started = Date.now();
    const f = await failed(client({ endpoint, timeoutMs: 300 }).getHealthStatus(health));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(f.failure.kind).toBe("timeout");
    expect(f.as("CustomKeyStore").code).toBe("XksProxyUriUnreachableException");
    expect(f.as("Cryptographic").code).toBe("KMSInvalidStateException");
  });

  it("refusing connections: unreachable", async () => {
    const s = createTcpServer();
    const endpoint = await listen(s);
    await new Promise((r) => s.close(r));
    const f = await failed(client({ endpoint }).getHealthStatus(health));
    expect(f.failure.kind).toBe("unreachable");
    expect(f.as("CustomKeyStore").code).toBe("XksProxyUriUnreachableException");
  });

  it("a certificate the client does not trust: a TLS failure", async () => {
    const f = await failed(client({ ca: tls.cert }).getHealthStatus(health));
    expect(f.failure.kind).toBe("tls");
    expect(f.as("CustomKeyStore").message).toMatch(/TLS connection/);
  });

  it("junk, non-JSON errors and unknown error names: XksProxyInvalidResponseException", async () => {
    for (const [status, body] of [
      [200, "not json"],
      [200, '{"xksProxyFleetSize":0}'],
      [500, "<html>oops</html>"],
      [400, '{"errorName":"SomethingNew"}'],
    ] as const) {
      const endpoint = await answering(status, body);
      const f = await failed(client({ endpoint, ca: tls.cert }).getHealthStatus(health));
      expect(f.as("CustomKeyStore").code, `${status} ${body}`).toBe(
        "XksProxyInvalidResponseException",
      );
      expect(f.as("CreateKey").code).toBe("CustomKeyStoreInvalidStateException");
    }
  });

  it("an Encrypt answer whose CDIV does not match: invalid output", async () => {
    const b = (n: number) => Buffer.alloc(n, 1).toString("base64");
    const endpoint = await answering(
      200,
      JSON.stringify({
        ciphertext: b(4),
        initializationVector: b(12),
        authenticationTag: b(16),
        ciphertextDataIntegrityValue: b(32),
      }),
    );
    const f = await failed(
      client({ endpoint, ca: tls.cert }).encrypt("k", Buffer.from("data"), undefined, meta),
    );
    expect(f.failure.kind).toBe("invalid-output");
    expect(f.as("Cryptographic").code).toBe("KMSInvalidStateException");
  });

  it("refuses endpoints and paths AWS would refuse", () => {
    const base = {
      uriPath: "/kms/xks/v1",
      credential: xksCredential(),
      region: "us-east-1",
    };
    expect(() => new XksClient({ ...base, endpoint: "http://localhost:1" })).toThrow(TypeError);
    expect(() => new XksClient({ ...base, endpoint: "https://h/x" })).toThrow(TypeError);
    expect(
      () => new XksClient({ ...base, endpoint: "https://h", uriPath: "/a b/kms/xks/v1" }),
    ).toThrow(TypeError);
  });
});
