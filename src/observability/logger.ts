/**
 * Structured logs with pino. Secrets never reach a log line: request bodies are
 * never logged, and `redact` removes the fields that could carry them should one
 * ever be passed by mistake.
 */
import { pino, type DestinationStream, type Logger } from "pino";

export const REDACTED_FIELDS = [
  "plaintext",
  "Plaintext",
  "secretAccessKey",
  "SecretAccessKey",
  "sessionToken",
  "SessionToken",
  "grantToken",
  "GrantToken",
  "authorization",
  "headers.authorization",
  "material",
  "privateKey",
  "PrivateKeyPlaintext",
  "*.plaintext",
  "*.Plaintext",
  "*.secretAccessKey",
  "*.SecretAccessKey",
  "*.sessionToken",
  "*.SessionToken",
  "*.grantToken",
  "*.GrantToken",
  "*.authorization",
  "*.material",
  "*.privateKey",
  "*.PrivateKeyPlaintext",
];

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "keyhaven" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_FIELDS, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}
