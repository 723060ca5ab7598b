import { createPrivateKey, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CERTIFICATE_POLICY,
  nextRenewal,
  pemCertificates,
  reconcileCertificates,
  type WebhookCertificates,
} from "./certificates.js";

const DNS = ["keyhaven-webhook.keyhaven.svc", "localhost"];
const DAY = 24 * 60 * 60 * 1000;
const T0 = new Date("2026-01-01T00:00:00Z");

function issued(current: WebhookCertificates | undefined, now: Date): WebhookCertificates {
  const d = reconcileCertificates(current, now, DNS);
  if (d.action !== "issue") throw new Error("expected new certificates");
  return d.certificates;
}

describe("webhook certificates", () => {
  it("creates a CA and a serving certificate that X.509 verification accepts", () => {
    const c = issued(undefined, T0);
    const ca = new X509Certificate(c.caCert);
    const leaf = new X509Certificate(c.tlsCert);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkHost("keyhaven-webhook.keyhaven.svc")).toBe("keyhaven-webhook.keyhaven.svc");
    expect(leaf.checkHost("other.example")).toBeUndefined();
    expect(leaf.checkPrivateKey(createPrivateKey(c.tlsKey))).toBe(true);
    expect(Date.parse(leaf.validTo) - T0.getTime()).toBe(
      DEFAULT_CERTIFICATE_POLICY.servingValidityMs,
    );
    expect(pemCertificates(c.caBundle).map((x) => x.fingerprint256)).toEqual([ca.fingerprint256]);
  });

  it("keeps valid certificates, renews the leaf (same CA, same bundle) when a third of its life is left", () => {
    const c = issued(undefined, T0);
    expect(reconcileCertificates(c, new Date(T0.getTime() + 19 * DAY), DNS).action).toBe("keep");
    const renewAt = nextRenewal(c).getTime();
    expect(renewAt).toBeGreaterThan(T0.getTime() + 19 * DAY);
    expect(renewAt).toBeLessThanOrEqual(T0.getTime() + 20 * DAY);
    const renewed = issued(c, new Date(T0.getTime() + 20 * DAY));
    expect(renewed.caCert).toBe(c.caCert);
    expect(renewed.caBundle).toBe(c.caBundle);
    expect(renewed.tlsCert).not.toBe(c.tlsCert);
  });

  it("replaces the CA near its expiry and keeps the old CA in the bundle", () => {
    const c = issued(undefined, T0);
    const later = new Date(T0.getTime() + 2500 * DAY);
    const renewed = issued(c, later);
    expect(renewed.caCert).not.toBe(c.caCert);
    const bundle = pemCertificates(renewed.caBundle).map((x) => x.fingerprint256);
    expect(bundle).toEqual([
      new X509Certificate(renewed.caCert).fingerprint256,
      new X509Certificate(c.caCert).fingerprint256,
    ]);
  });

  it("covers IP addresses as IP SANs (what the API server checks for a webhook URL like https://127.0.0.1:PORT)", () => {
    const d = reconcileCertificates(undefined, T0, [...DNS, "127.0.0.1", "fd00::1"]);
    if (d.action !== "issue") throw new Error("expected new certificates");
    const leaf = new X509Certificate(d.certificates.tlsCert);
    expect(leaf.subjectAltName).toBe(
      "DNS:keyhaven-webhook.keyhaven.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:FD00:0:0:0:0:0:0:1",
    );
    expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(leaf.checkIP("10.0.0.1")).toBeUndefined();
    expect(leaf.subject).toBe("CN=keyhaven-webhook.keyhaven.svc");
  });

  it("a new CA enters the bundle while the serving certificate of the old CA stays until its renewal", () => {
    const c = issued(undefined, T0);
    // Just before the CA is due, the leaf is renewed as usual (same CA).
    const caDueAt = T0.getTime() + 2434 * DAY;
    const fresh = issued(c, new Date(caDueAt - 5 * DAY));
    const rotated = issued(fresh, new Date(caDueAt));
    expect(rotated.caCert).not.toBe(fresh.caCert);
    expect(rotated.tlsCert).toBe(fresh.tlsCert);
    expect(pemCertificates(rotated.caBundle).map((x) => x.fingerprint256)).toEqual([
      new X509Certificate(rotated.caCert).fingerprint256,
      new X509Certificate(fresh.caCert).fingerprint256,
    ]);
    // Kept until its own renewal, then replaced by one from the new CA, same bundle.
    expect(reconcileCertificates(rotated, new Date(caDueAt + DAY), DNS).action).toBe("keep");
    const renewed = issued(rotated, new Date(caDueAt + 20 * DAY));
    expect(
      new X509Certificate(renewed.tlsCert).checkIssued(new X509Certificate(rotated.caCert)),
    ).toBe(true);
    expect(renewed.caBundle).toBe(rotated.caBundle);
  });

  it("re-issues when the host names change (an IP added too) or the stored data is unreadable", () => {
    const c = issued(undefined, T0);
    expect(reconcileCertificates(c, T0, ["new.name.svc"]).action).toBe("issue");
    // A certificate made before --webhook-host / an IP listen address lacks the IP SAN.
    expect(reconcileCertificates(c, T0, [...DNS, "127.0.0.1"]).action).toBe("issue");
    expect(reconcileCertificates({ ...c, tlsKey: "garbage" }, T0, DNS).action).toBe("issue");
  });
});
