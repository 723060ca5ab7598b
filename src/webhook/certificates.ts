/**
 * The webhook's own PKI: a self-signed CA and a serving certificate signed by it,
 * both ECDSA P-256 / SHA-256. Certificates are DER-encoded with @peculiar/asn1-x509
 * (ASN.1 structures only) and signed with node:crypto; nothing shells out to openssl.
 *
 * Lifetimes follow what works for admission webhooks in practice: a long-lived CA
 * (the caBundle changes rarely, so API servers never see an unknown issuer) and a
 * short-lived serving certificate, re-issued when it has less than a third of its
 * life left. A new CA is made only when the CA itself gets close to expiry; the
 * bundle then carries both CAs, and the serving certificate the old CA signed is served
 * until its own renewal, so no API server meets a certificate from a CA it does not
 * know yet.
 */
import { isIP } from "node:net";
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_serverAuth,
} from "@peculiar/asn1-x509";

const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const COMMON_NAME = "2.5.4.3";
const DAY_MS = 24 * 60 * 60 * 1000;

export interface CertificatePolicy {
  /** Lifetime of the CA (default 10 years). */
  readonly caValidityMs: number;
  /** Lifetime of the serving certificate (default 30 days). */
  readonly servingValidityMs: number;
  /** Re-issue when less than this fraction of the lifetime is left (default 1/3). */
  readonly renewFraction: number;
}

export const DEFAULT_CERTIFICATE_POLICY: CertificatePolicy = {
  caValidityMs: 3650 * DAY_MS,
  servingValidityMs: 30 * DAY_MS,
  renewFraction: 1 / 3,
};

/** What the certificate Secret holds (PEM text; the same keys cert-manager uses). */
export interface WebhookCertificates {
  /** The CA certificates the API server should trust (one or two, PEM). */
  readonly caBundle: string;
  /** The current CA certificate (PEM) and its private key (PKCS#8 PEM). */
  readonly caCert: string;
  readonly caKey: string;
  /** The serving certificate (PEM, leaf only) and its private key (PKCS#8 PEM). */
  readonly tlsCert: string;
  readonly tlsKey: string;
}

function commonName(cn: string): Name {
  return new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: COMMON_NAME,
        value: new AttributeValue({ utf8String: cn }),
      }),
    ]),
  ]);
}

function extension(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({
    extnID: id,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

function keyIdentifier(publicKey: KeyObject): Buffer {
  // RFC 5280 4.2.1.2 method 1 uses SHA-1 of the key bits; a truncated SHA-256 is as good.
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest()
    .subarray(0, 20);
}

/** A positive 128-bit serial number (top bit cleared so DER keeps it positive). */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  if (bytes[0] === 0) bytes[0] = 1;
  return new Uint8Array(bytes).buffer;
}

interface IssueRequest {
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  /** DNS names and IP addresses (IPv4 or IPv6) the certificate is for. */
  readonly hosts?: readonly string[];
  readonly issuer: {
    readonly name: string;
    readonly key: KeyObject;
    readonly publicKey: KeyObject;
  };
}

function issue(req: IssueRequest): string {
  const extensions = [
    extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: req.isCa })),
    extension(
      id_ce_keyUsage,
      true,
      new KeyUsage(
        req.isCa
          ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign
          : KeyUsageFlags.digitalSignature,
      ),
    ),
    extension(
      id_ce_subjectKeyIdentifier,
      false,
      new SubjectKeyIdentifier(keyIdentifier(req.publicKey)),
    ),
    extension(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({
        keyIdentifier: new KeyIdentifier(keyIdentifier(req.issuer.publicKey)),
      }),
    ),
  ];
  if (!req.isCa) {
    extensions.push(extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])));
    extensions.push(
      extension(
        id_ce_subjectAltName,
        false,
        new SubjectAlternativeName(
          (req.hosts ?? []).map((h) =>
            // The API server verifies a webhook URL's IP against IP SANs only (RFC 6125).
            isIP(h) ? new GeneralName({ iPAddress: h }) : new GeneralName({ dNSName: h }),
          ),
        ),
      ),
    );
  }
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: commonName(req.issuer.name),
    validity: new Validity({ notBefore: req.notBefore, notAfter: req.notAfter }),
    subject: commonName(req.subject),
    subjectPublicKeyInfo: AsnConvert.parse(
      req.publicKey.export({ type: "spki", format: "der" }),
      SubjectPublicKeyInfo,
    ),
    extensions: new Extensions(extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign("sha256", tbsDer, req.issuer.key); // DER-encoded ECDSA-Sig-Value
  const der = AsnConvert.serialize(
    new Certificate({
      tbsCertificate: tbs,
      signatureAlgorithm: algorithm,
      signatureValue: new Uint8Array(signature).buffer,
    }),
  );
  return toPem(Buffer.from(der));
}

function toPem(der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`;
}

function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/** Backdate a little so API servers with a slightly slow clock accept a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export function createCa(
  now: Date,
  policy: CertificatePolicy,
  name: string,
): {
  cert: string;
  key: string;
} {
  const { privateKey, publicKey } = newKeyPair();
  const cert = issue({
    subject: name,
    publicKey,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + policy.caValidityMs),
    isCa: true,
    issuer: { name, key: privateKey, publicKey },
  });
  return { cert, key: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}

export function createServingCertificate(
  now: Date,
  policy: CertificatePolicy,
  ca: { cert: string; key: string },
  hosts: readonly string[],
): { cert: string; key: string } {
  const caCert = new X509Certificate(ca.cert);
  const caKey = createPrivateKey(ca.key);
  const { privateKey, publicKey } = newKeyPair();
  const cert = issue({
    subject: hosts.find((h) => isIP(h) === 0) ?? hosts[0] ?? "keyhaven-webhook",
    publicKey,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    // A leaf never outlives its CA.
    notAfter: new Date(
      Math.min(now.getTime() + policy.servingValidityMs, Date.parse(caCert.validTo)),
    ),
    isCa: false,
    hosts,
    issuer: { name: commonNameOf(caCert), key: caKey, publicKey: caCert.publicKey },
  });
  return { cert, key: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}

function commonNameOf(cert: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "keyhaven-webhook-ca";
}

/** Splits a PEM bundle into its certificates. */
export function pemCertificates(bundle: string): X509Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
}

function dueForRenewal(cert: X509Certificate, now: Date, fraction: number): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return now.getTime() >= to - (to - from) * fraction;
}

export type CertificateDecision =
  | { readonly action: "keep" }
  | {
      readonly action: "issue";
      readonly reason: string;
      readonly certificates: WebhookCertificates;
    };

/** Whether a certificate covers a DNS name (wildcards as TLS clients match them) or an IP. */
function coversHost(cert: X509Certificate, host: string): boolean {
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/**
 * Decides, as a pure function of (current certificates, now), whether to keep them or
 * what to replace them with. Keeps the CA while it has life left, so a serving-certificate
 * renewal never changes the caBundle. `hosts` are the DNS names and IP addresses the
 * serving certificate must cover; a stored one missing any of them is re-issued.
 */
export function reconcileCertificates(
  current: WebhookCertificates | undefined,
  now: Date,
  hosts: readonly string[],
  policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY,
  caName = "keyhaven-webhook-ca",
): CertificateDecision {
  let ca: { cert: string; key: string } | undefined;
  let caBundle: string | undefined;
  let keptLeaf: { cert: string; key: string } | undefined;
  let reason: string;
  const parsed = current && safeParse(current);
  if (!current || !parsed) {
    reason = current ? "stored certificates are unreadable" : "no certificates yet";
  } else {
    const caDue = dueForRenewal(parsed.ca, now, policy.renewFraction);
    const leafDue = dueForRenewal(parsed.leaf, now, policy.renewFraction);
    const signedBy = (c: X509Certificate) =>
      parsed.leaf.checkIssued(c) && parsed.leaf.verify(c.publicKey);
    // A leaf from the previous CA is good while that CA is still in the bundle.
    const leafMatches =
      parsed.bundle.some(signedBy) && hosts.every((h) => coversHost(parsed.leaf, h));
    const bundleTrusts = parsed.bundle.some((c) => c.fingerprint256 === parsed.ca.fingerprint256);
    if (!caDue && !leafDue && leafMatches && bundleTrusts) return { action: "keep" };
    if (caDue) {
      reason = "the CA is close to expiry";
      // The old CA stays in the bundle, and the leaf it signed stays in service until its
      // own renewal: API servers get the new bundle long before a certificate needs it.
      caBundle = current.caCert;
      if (!leafDue && leafMatches && signedBy(parsed.ca))
        keptLeaf = { cert: current.tlsCert, key: current.tlsKey };
    } else {
      ca = { cert: current.caCert, key: current.caKey };
      caBundle = current.caBundle;
      reason = leafDue
        ? "the serving certificate is close to expiry"
        : !leafMatches
          ? "the serving certificate does not match the CA or the host names"
          : "the CA bundle does not contain the CA";
    }
  }
  ca ??= createCa(now, policy, caName);
  const leaf = keptLeaf ?? createServingCertificate(now, policy, ca, hosts);
  const bundle = [
    ca.cert,
    ...(caBundle ? pemCertificates(caBundle) : [])
      .filter((c) => Date.parse(c.validTo) > now.getTime())
      .map((c) => c.toString())
      .filter(
        (pem) =>
          new X509Certificate(pem).fingerprint256 !== new X509Certificate(ca.cert).fingerprint256,
      ),
  ]
    .map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`))
    .join("");
  return {
    action: "issue",
    reason,
    certificates: {
      caBundle: bundle,
      caCert: ca.cert,
      caKey: ca.key,
      tlsCert: leaf.cert,
      tlsKey: leaf.key,
    },
  };
}

function safeParse(
  c: WebhookCertificates,
): { ca: X509Certificate; leaf: X509Certificate; bundle: X509Certificate[] } | undefined {
  try {
    createPrivateKey(c.caKey);
    createPrivateKey(c.tlsKey);
    return {
      ca: new X509Certificate(c.caCert),
      leaf: new X509Certificate(c.tlsCert),
      bundle: pemCertificates(c.caBundle),
    };
  } catch {
    return undefined;
  }
}

/** When the current certificates next need attention (for scheduling the next check). */
export function nextRenewal(
  c: WebhookCertificates,
  policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY,
): Date {
  const parsed = safeParse(c);
  if (!parsed) return new Date(0);
  const at = (cert: X509Certificate) => {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    return to - (to - from) * policy.renewFraction;
  };
  return new Date(Math.min(at(parsed.ca), at(parsed.leaf)));
}
