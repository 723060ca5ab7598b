import { KMSClient, DescribeKeyCommand, NotFoundException } from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { kmsErrorName } from "./kms.js";

describe("kmsErrorName", () => {
  it("names an exception the key service answered with", () => {
    const err = new NotFoundException({ message: "no such key", $metadata: {} });
    expect(kmsErrorName(err)).toBe("NotFoundException");
    expect(kmsErrorName({ name: "KMSInvalidStateException", $fault: "client" })).toBe(
      "KMSInvalidStateException",
    );
  });

  it("leaves a transport error unnamed, so the reason says the key service is unreachable", async () => {
    // Port 9 on loopback: nothing listens, the connection is refused.
    const kms = new KMSClient({
      endpoint: "http://127.0.0.1:9",
      region: "us-east-1",
      credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" },
      maxAttempts: 1,
    });
    const err: unknown = await kms.send(new DescribeKeyCommand({ KeyId: "alias/x" })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as { $metadata?: unknown }).$metadata).toBeDefined();
    expect(kmsErrorName(err)).toBeUndefined();
  });
});
