/**
 * Certificate rotation with a fake clock: the leader re-issues before expiry and
 * updates the caBundle; every replica serves the new certificate without a restart.
 */
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryWebhookResources } from "./support/kube/memoryWebhookResources.js";
import { pemCertificates } from "../src/webhook/certificates.js";
import { CertificateManager } from "../src/webhook/certificateManager.js";
import { WebhookServer } from "../src/webhook/server.js";
import { cachedNamespaceLabels, startWebhook } from "../src/webhook/startWebhook.js";
import { SETTINGS, admissionReview, optedIn, pod, post } from "./support/webhookFixtures.js";
import { ManualClock } from "./support/manualClock.js";

const DAY = 24 * 60 * 60 * 1000;

/** The fingerprint of the certificate a fresh TLS connection is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Verification is done below against the fake clock's notion of time, not the real one.
    const socket = connect(
      { host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false },
      () => {
        const fp = socket.getPeerCertificate().fingerprint256;
        socket.end();
        resolve(fp);
      },
    );
    socket.on("error", reject);
  });
}

const servers: WebhookServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function replica(
  resources: MemoryWebhookResources,
  clock: ManualClock,
  leader: { value: boolean },
) {
  let server: WebhookServer | undefined;
  let pending: { cert: string; key: string } | undefined;
  const manager = new CertificateManager({
    resources,
    namespace: "keyhaven",
    secretName: "keyhaven-webhook-tls",
    webhookConfigName: "keyhaven",
    hosts: ["keyhaven-webhook.keyhaven.svc", "localhost"],
    clock,
    isLeader: () => leader.value,
    onCertificate: (c) => (server ? server.setCertificate(c) : (pending = c)),
  });
  return {
    manager,
    async start() {
      await manager.sync();
      if (!pending) throw new Error("no certificate yet");
      server = new WebhookServer({
        certificate: pending,
        logger: pino({ level: "silent" }),
        settings: SETTINGS,
        ownNamespace: "keyhaven",
      });
      servers.push(server);
      return (await server.listen("127.0.0.1", 0)).port;
    },
  };
}

describe("webhook certificate rotation", () => {
  it("renews before expiry, patches the caBundle, and every replica serves the new certificate", async () => {
    const clock = new ManualClock(Date.parse("2026-03-01T00:00:00Z"));
    const resources = new MemoryWebhookResources();
    resources.webhookConfigs.set("keyhaven", ["", ""]); // two webhooks, no caBundle yet
    const leaderFlag = { value: true };
    const followerFlag = { value: false };
    const leader = await replica(resources, clock, leaderFlag);
    const follower = await replica(resources, clock, followerFlag);
    const leaderPort = await leader.start();
    const followerPort = await follower.start();

    const secret = () => resources.secrets.get("keyhaven/keyhaven-webhook-tls")!.data;
    const first = secret();
    const firstLeaf = new X509Certificate(first["tls.crt"]!);
    expect(resources.webhookConfigs.get("keyhaven")).toEqual([
      first["ca-bundle.crt"],
      first["ca-bundle.crt"],
    ]);
    expect(await servedFingerprint(leaderPort)).toBe(firstLeaf.fingerprint256);
    expect(await servedFingerprint(followerPort)).toBe(firstLeaf.fingerprint256);

    // Nothing to do while the certificate is young.
    clock.advance(10 * DAY);
    expect(await leader.manager.sync()).toMatchObject({
      issued: false,
      caBundlePatched: false,
      loaded: false,
    });

    // Two thirds into the 30-day life: re-issued, same CA so the caBundle stays.
    clock.advance(10 * DAY);
    expect(await leader.manager.sync()).toMatchObject({
      issued: true,
      caBundlePatched: false,
      loaded: true,
    });
    const second = secret();
    const secondLeaf = new X509Certificate(second["tls.crt"]!);
    expect(second["ca.crt"]).toBe(first["ca.crt"]);
    expect(secondLeaf.fingerprint256).not.toBe(firstLeaf.fingerprint256);
    expect(Date.parse(firstLeaf.validTo)).toBeGreaterThan(clock.now().getTime()); // before the old one expires
    expect(secondLeaf.verify(new X509Certificate(second["ca.crt"]!).publicKey)).toBe(true);
    expect(await servedFingerprint(leaderPort)).toBe(secondLeaf.fingerprint256);
    // The follower picks it up on its next check, without a restart.
    expect(await servedFingerprint(followerPort)).toBe(firstLeaf.fingerprint256);
    expect(await follower.manager.sync()).toMatchObject({ issued: false, loaded: true });
    expect(await servedFingerprint(followerPort)).toBe(secondLeaf.fingerprint256);

    // Years later the CA nears its end: a new CA, the bundle trusts both, the leader patches it.
    clock.advance(2450 * DAY);
    expect(await leader.manager.sync()).toMatchObject({ issued: true, caBundlePatched: true });
    const third = secret();
    const bundle = pemCertificates(third["ca-bundle.crt"]!).map((c) => c.fingerprint256);
    expect(bundle).toEqual([
      new X509Certificate(third["ca.crt"]!).fingerprint256,
      new X509Certificate(first["ca.crt"]!).fingerprint256,
    ]);
    expect(resources.webhookConfigs.get("keyhaven")).toEqual([
      third["ca-bundle.crt"],
      third["ca-bundle.crt"],
    ]);
    expect(Date.parse(new X509Certificate(first["ca.crt"]!).validTo)).toBeGreaterThan(
      clock.now().getTime(),
    );
  });

  it("a follower never writes; a new leader keeps the stored CA (no caBundle fight)", async () => {
    const clock = new ManualClock(Date.parse("2026-03-01T00:00:00Z"));
    const resources = new MemoryWebhookResources();
    resources.webhookConfigs.set("keyhaven", [""]);
    const flagA = { value: true };
    const flagB = { value: false };
    const a = await replica(resources, clock, flagA);
    const b = await replica(resources, clock, flagB);
    await a.start();
    await b.start();
    const writes = { ...resources.writes };
    await b.manager.sync();
    expect(resources.writes).toEqual(writes);

    // Leadership moves to b: it finds valid certificates and changes nothing.
    flagA.value = false;
    flagB.value = true;
    const ca = resources.secrets.get("keyhaven/keyhaven-webhook-tls")!.data["ca.crt"];
    expect(await b.manager.sync()).toMatchObject({ issued: false, caBundlePatched: false });
    expect(resources.secrets.get("keyhaven/keyhaven-webhook-tls")!.data["ca.crt"]).toBe(ca);
    expect(resources.writes).toEqual(writes);

    // Someone edits the caBundle by hand: the leader puts it back.
    resources.webhookConfigs.set("keyhaven", ["stale"]);
    expect(await b.manager.sync()).toMatchObject({ caBundlePatched: true });
  });
});

describe("startWebhook", () => {
  it("issues its own certificate as leader, patches the caBundle and admits over HTTPS", async () => {
    const resources = new MemoryWebhookResources();
    resources.webhookConfigs.set("keyhaven", [""]);
    resources.namespaces.set("shop", { "keyhaven.dev/injection": "enabled" });
    const running = await startWebhook(
      {
        listen: { host: "127.0.0.1", port: 0 },
        configName: "keyhaven",
        namespace: "keyhaven",
        serviceName: "keyhaven-webhook",
        secretName: "keyhaven-webhook-tls",
        settings: SETTINGS,
      },
      { resources, isLeader: () => true, logger: pino({ level: "silent" }) },
    );
    try {
      const caBundle = resources.webhookConfigs.get("keyhaven")![0]!;
      expect(caBundle).toContain("BEGIN CERTIFICATE");
      const base = running.url.replace("/mutate-pods", "");
      const review = JSON.stringify(admissionReview(pod(optedIn), { uid: "s1" }));
      const res = await post(
        base,
        review,
        caBundle,
        "/mutate-pods",
        "keyhaven-webhook.keyhaven.svc",
      );
      expect(res.json.response).toMatchObject({ uid: "s1", allowed: true, patchType: "JSONPatch" });
      // Registered by URL (https://127.0.0.1:PORT/mutate-pods), the API server verifies
      // the certificate against the URL's IP: the named listen address is an IP SAN.
      const byUrl = await post(base, review, caBundle, "/mutate-pods", null);
      expect(byUrl.json.response).toMatchObject({ uid: "s1", allowed: true });
    } finally {
      await running.stop();
    }
  });

  it("namespace lookups are cached and bounded by a timeout (then the selector is trusted)", async () => {
    let calls = 0;
    const clock = new ManualClock(0);
    const labels = cachedNamespaceLabels(
      async (name) => {
        calls++;
        return name === "slow" ? new Promise(() => {}) : { team: name };
      },
      { ttlMs: 1000, timeoutMs: 5, clock },
    );
    expect(await labels("a")).toEqual({ team: "a" });
    expect(await labels("a")).toEqual({ team: "a" });
    expect(calls).toBe(1);
    clock.advance(1001);
    await labels("a");
    expect(calls).toBe(2);
    expect(await labels("slow")).toBeUndefined();
  });
});
