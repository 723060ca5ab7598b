/**
 * The value types flags share. Each parses the flag's text (undefined when it is absent
 * and has no default) and says, on failure, what a good value looks like.
 */
import { isIP } from "node:net";
import { z } from "zod";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Rejects with `message(text)`: one place for "expected …, got '…'" errors. */
const text = (test: (value: string) => boolean, message: (value: string) => string) =>
  z.string().superRefine((value, ctx) => {
    if (!test(value)) ctx.addIssue({ code: "custom", message: message(value) });
  });

/** HOST:PORT, [IPv6]:PORT, or :PORT (all interfaces). */
export const hostPort = z.string().transform((value, ctx): HostPort => {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({
      code: "custom",
      message: `expected HOST:PORT, e.g. 127.0.0.1:8080, got '${value}'`,
    });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port };
});

/** A value that matches `pattern`; else "`what`, got '…'". */
export const matching = (pattern: RegExp, what: string) =>
  text(
    (v) => pattern.test(v),
    (v) => `${what}, got '${v}'`,
  );

/** A value the command cannot run without; `message` says what to give. */
export const required = (message: string) => z.string({ error: message }).min(1, message);

export const nonEmpty = z.string().min(1);
/** An optional value that, when given, is not empty. */
export const optionalText = nonEmpty.optional();

export const region = z.string().regex(/^([a-z]+-){2,3}\d+$/, "a region looks like us-east-1");

export const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
  error: (issue) =>
    `fatal|error|warn|info|debug|trace|silent, got '${typeof issue.input === "string" ? issue.input : ""}'`,
});

const httpUrlPattern = /^https?:\/\/[^\s/]+(\/\S*)?$/;

export const httpUrl = text(
  (v) => httpUrlPattern.test(v),
  (v) => `expected an http(s) URL, got '${v}'`,
);

/** The key service URL, which a command cannot run without. */
export const kmsEndpoint = (example: string) =>
  z.preprocess(
    (v) => v ?? "",
    text(
      (v) => httpUrlPattern.test(v),
      (v) =>
        `the key service URL is required (or AWS_ENDPOINT_URL_KMS), e.g. ${example}; got '${v}'`,
    ),
  );

/** A whole number of `unit` from `min` to `max` (digits only: no sign, no exponent). */
export const wholeNumber = (min: number, max: number, message: (value: string) => string) =>
  text((v) => /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max, message).transform(Number);

/** `true` or `false`. */
export const bool = z
  .string()
  .refine((v) => v === "true" || v === "false", {
    error: (issue) => `true or false, got '${String(issue.input)}'`,
  })
  .transform((v) => v === "true");

/** A duration such as 10m, 15s or 1500ms, in milliseconds. */
export const duration = z.string().transform((value, ctx) => {
  const m = /^(\d{1,6})(ms|s|m)$/.exec(value);
  if (!m || Number(m[1]) === 0) {
    ctx.addIssue({
      code: "custom",
      message: `a duration such as 10m, 15s or 1500ms, got '${value}'`,
    });
    return z.NEVER;
  }
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as "ms" | "s" | "m"];
});

/** A DNS name (RFC 1123 labels; a leading `*.` wildcard as certificates allow). */
const dnsName =
  /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;

/** Comma-separated DNS names and IP addresses ([IPv6] brackets allowed). */
export const hostList = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const hosts = (value ?? "")
      .split(",")
      .map((h) => h.trim().replace(/^\[|\]$/g, ""))
      .filter((h) => h !== "");
    const bad = hosts.find((h) => isIP(h) === 0 && !dnsName.test(h));
    if (bad !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected comma-separated DNS names and IP addresses, got '${bad}'`,
      });
      return z.NEVER;
    }
    return hosts;
  });

/**
 * The path prefix of an XKS proxy: /PREFIX, where PREFIX/kms/xks/v1 is a valid
 * XksProxyUriPath (at most 128 of a-z A-Z 0-9 / - _). A value that already ends in
 * /kms/xks/v1 is taken without that ending.
 */
export const xksProxyPrefix = text(
  (v) => {
    const prefix = v.replace(/\/kms\/xks\/v1$/, "");
    return /^(\/[A-Za-z0-9_-]+)+$/.test(prefix) && `${prefix}/kms/xks/v1`.length <= 128;
  },
  (v) =>
    `expected /PREFIX of letters, digits, '-', '_' and '/' (at most 117 characters), e.g. /keystores/a, got '${v}'`,
).transform((v) => v.replace(/\/kms\/xks\/v1$/, ""));
