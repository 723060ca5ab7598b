/**
 * The controller's side of the key service: an @aws-sdk/client-kms client (the
 * same protocol as every client) and how its errors are classified. Reconcilers
 * never do cryptography; they only call these operations.
 */
import { KMSClient, KMSServiceException, type KMSClientConfig } from "@aws-sdk/client-kms";

export interface KmsConnection {
  readonly endpoint: string;
  readonly region: string;
  /** Static credentials; absent → the SDK's default chain (e.g. web identity). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
}

export function createKmsClient(
  connection: KmsConnection,
  extra: Partial<KMSClientConfig> = {},
): KMSClient {
  return new KMSClient({
    endpoint: connection.endpoint,
    region: connection.region,
    // A copy: the SDK annotates the credentials object it is given (frozen ones break it).
    ...(connection.credentials && {
      credentials: {
        accessKeyId: connection.credentials.accessKeyId,
        secretAccessKey: connection.credentials.secretAccessKey,
        ...(connection.credentials.sessionToken && {
          sessionToken: connection.credentials.sessionToken,
        }),
      },
    }),
    // The work queue retries with its own backoff; one SDK retry absorbs a dropped connection.
    maxAttempts: 2,
    ...extra,
  });
}

/** Counts calls by operation name (for benchmarks and tests). */
export function countKmsCalls(client: KMSClient): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = String(context.commandName ?? "unknown").replace(/Command$/, "");
      counts.set(op, (counts.get(op) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: "keyhavenCallCounter" },
  );
  return counts;
}

/** The AWS exception name of an error from the key service, or undefined for transport errors. */
export function kmsErrorName(err: unknown): string | undefined {
  if (err instanceof KMSServiceException) return err.name;
  // An answer of the service carries $fault ("client" | "server"); the SDK also puts
  // $metadata on transport errors (refused connection, timeout), which must stay undefined.
  const e = err as { name?: string; $fault?: unknown } | undefined;
  return e && typeof e.$fault === "string" && typeof e.name === "string" ? e.name : undefined;
}

export const isKmsError = (err: unknown, ...names: string[]) => {
  const name = kmsErrorName(err);
  return name !== undefined && names.includes(name);
};

/** Errors that mean the spec asks for something the key service refuses: fix the object, retrying will not help. */
const SPEC_ERRORS = new Set([
  "ValidationException",
  "UnsupportedOperationException",
  "MalformedPolicyDocumentException",
  "TagException",
  "InvalidArnException",
  "InvalidAliasNameException",
  "NotAuthorizedException",
  "InvalidKeyUsageException",
]);

export const isSpecError = (err: unknown) => SPEC_ERRORS.has(kmsErrorName(err) ?? "");

export function errorMessage(err: unknown): string {
  const name = kmsErrorName(err);
  const message = err instanceof Error ? err.message : String(err);
  return name ? `${name}: ${message}` : message;
}
