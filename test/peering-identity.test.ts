/**
 * A peer's identity is checked, never assumed (issue 17 item 1, docs/multi-region.md): the
 * peering public key a primary seals material to must come with a MAC under the primary's
 * own SigV4 signing key of the request, which only a holder of the peering credential's
 * secret can make. An impostor on the path that substitutes its own key is refused before
 * any material is sealed; an honest relay changes nothing.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, request, type Server } from "node:http";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  ReplicateKeyCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "./support/errors.js";
import { freePort } from "./support/clusterWebhook.js";
import { kmsClient, startInProcess, type InProcessServer } from "./support/server.js";

const EAST = "us-east-1";
const WEST = "eu-west-1";

/** An HTTP relay to `target` that, while `substitute` is on, swaps the peering key it relays. */
async function relay(port: number, target: () => string) {
  const attacker = generateKeyPairSync("rsa", { modulusLength: 3072 })
    .publicKey.export({ format: "der", type: "spki" })
    .toString("base64");
  const state = { substitute: false, substituted: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      // Headers as signed (Host among them), so the peer's SigV4 check passes.
      const out = request(`${target()}/`, { method: "POST", headers: req.headers }, (answer) => {
        const parts: Buffer[] = [];
        answer.on("data", (c: Buffer) => parts.push(c));
        answer.on("end", () => {
          let body = Buffer.concat(parts).toString();
          if (
            state.substitute &&
            answer.statusCode === 200 &&
            String(req.headers["x-amz-target"]).endsWith("GetPeeringKey")
          ) {
            body = JSON.stringify({ ...(JSON.parse(body) as object), PublicKey: attacker });
            state.substituted++;
          }
          res.writeHead(answer.statusCode ?? 502, {
            "content-type": "application/x-amz-json-1.1",
          });
          res.end(body);
        });
      });
      out.on("error", () => res.destroy());
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, state, url: `http://127.0.0.1:${port}` };
}

describe("the peering key is authenticated by the peering credential, not assumed", () => {
  let a: InProcessServer;
  let b: InProcessServer;
  let path: Awaited<ReturnType<typeof relay>>;
  let east: KMSClient;
  let west: KMSClient;

  beforeAll(async () => {
    path = await relay(await freePort(), () => b.url);
    a = await startInProcess({ region: EAST, args: ["--peer", `${WEST}=${path.url}`] });
    b = await startInProcess({
      region: WEST,
      credentials: { path: `${a.dataDir}/test-credentials.yaml`, credential: a.credentials },
      args: ["--peer", `${EAST}=${a.url}`],
    });
    east = kmsClient(a);
    west = kmsClient(b);
  }, 120_000);

  afterAll(async () => {
    east?.destroy();
    west?.destroy();
    await a?.stop();
    await b?.stop();
    path?.server.close();
  });

  it("refuses a substituted peering key before sealing anything, and works through an honest relay", async () => {
    const keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!
      .KeyId!;
    path.state.substitute = true;
    const refused = await failure(
      east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST })),
    );
    expect(path.state.substituted).toBe(1);
    expect(refused).toMatchObject({ name: "KMSInternalException" });
    expect(refused.message).toContain(
      `The peering key from Region ${WEST} is not proven by the peering credential`,
    );
    // Nothing was made at B, nothing listed at A.
    expect(await failure(west.send(new DescribeKeyCommand({ KeyId: keyId })))).toMatchObject({
      name: "NotFoundException",
    });
    expect(
      (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!
        .MultiRegionConfiguration!.ReplicaKeys,
    ).toEqual([]);

    path.state.substitute = false;
    await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const blob = (
      await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("proven") }))
    ).CiphertextBlob!;
    const opened = await west.send(new DecryptCommand({ CiphertextBlob: blob }));
    expect(Buffer.from(opened.Plaintext!).toString()).toBe("proven");
  }, 120_000);
});
