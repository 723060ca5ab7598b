import { describe, expect, it } from "vitest";
import { parseValues } from "./table.js";
import { ConfigError } from "./config.js";
import { WEBHOOK_FLAGS, webhookConfig, type WebhookContext } from "./webhook.js";

/** The webhook's configuration from raw flag texts, as the controller's parser reads them. */
const webhookConfigFrom = (get: (flag: string) => string | undefined, context: WebhookContext) =>
  webhookConfig(parseValues(WEBHOOK_FLAGS, get), context);

const context = {
  namespace: "keyhaven",
  kmsEndpoint: "https://keyhaven.keyhaven.svc:8443",
  region: "eu-west-1",
};

describe("webhookConfigFrom", () => {
  it("defaults follow DESIGN.md and the chart", () => {
    const c = webhookConfigFrom(() => undefined, { ...context, version: "0.1.0" });
    expect(c).toEqual({
      listen: { host: "0.0.0.0", port: 9443 },
      configName: "keyhaven",
      namespace: "keyhaven",
      serviceName: "keyhaven-webhook",
      secretName: "keyhaven-webhook-tls",
      settings: {
        kmsEndpoint: "https://keyhaven.keyhaven.svc:8443",
        stsEndpoint: "https://keyhaven.keyhaven.svc:8443",
        region: "eu-west-1",
        roleArn: "arn:aws:iam::000000000000:role/{namespace}/{serviceAccount}",
        agentImage: "ghcr.io/keyhaven/keyhaven:0.1.0",
        tokenExpirationSeconds: 3600,
        refreshIntervalSeconds: 300,
      },
    });
  });

  it("reads flags and rejects bad values with the flag's name", () => {
    const flags: Record<string, string> = {
      "webhook-cert-dir": "/etc/tls",
      "agent-image": "registry/keyhaven:1",
      "agent-image-pull-policy": "IfNotPresent",
      "token-expiration-seconds": "600",
    };
    const c = webhookConfigFrom((f) => flags[f], context);
    expect(c.certDir).toBe("/etc/tls");
    expect(c.settings).toMatchObject({
      agentImage: "registry/keyhaven:1",
      agentImagePullPolicy: "IfNotPresent",
      tokenExpirationSeconds: 600,
    });
    expect(() =>
      webhookConfigFrom((f) => (f === "token-expiration-seconds" ? "60" : undefined), context),
    ).toThrow(
      new ConfigError(
        "--token-expiration-seconds: expected a whole number from 600 to 86400, got '60'",
      ),
    );
    expect(() =>
      webhookConfigFrom((f) => (f === "webhook-listen" ? "nope" : undefined), context),
    ).toThrow(/--webhook-listen/);
  });

  it("--webhook-host takes comma-separated DNS names and IPs, and refuses anything else", () => {
    const c = webhookConfigFrom(
      (f) => (f === "webhook-host" ? "10.0.0.7, webhook.example.com,[fd00::1]" : undefined),
      context,
    );
    expect(c.hosts).toEqual(["10.0.0.7", "webhook.example.com", "fd00::1"]);
    expect(() =>
      webhookConfigFrom(
        (f) => (f === "webhook-host" ? "ok.example,https://x" : undefined),
        context,
      ),
    ).toThrow(
      new ConfigError(
        "--webhook-host: expected comma-separated DNS names and IP addresses, got 'https://x'",
      ),
    );
  });
});
