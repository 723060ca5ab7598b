/**
 * AWS_CLOUDHSM custom key stores backed by a PKCS#11 token (docs/hsm.md, "Custom key
 * stores"). The mapping from AWS's CloudHSM API:
 *
 *   CloudHsmClusterId       `cluster-<token label>`: the token's label (11-16 characters
 *                           of [a-zA-Z2-7], AWS's pattern) in the module `--pkcs11-module`
 *   KeyStorePassword        the token's user PIN (AWS: the kmsuser password); stored
 *                           wrapped under the root key, never logged or returned
 *   TrustAnchorCertificate  stored and returned as given; not checked (PKCS#11 has no
 *                           cluster certificate)
 *
 * Each KMS key is an AES-256 secret key generated in the token (CKA_TOKEN, CKA_SENSITIVE,
 * not CKA_EXTRACTABLE, encrypt/decrypt only) labelled with the key id; Encrypt, Decrypt,
 * ReEncrypt and GenerateDataKey* run AES-GCM under it in the token (pkcs11/tokenGcm.ts).
 */
import type { CreateCustomKeyStoreRequest, UpdateCustomKeyStoreRequest } from "@aws-sdk/client-kms";
import type { Logger } from "pino";
import pkcs11js from "pkcs11js";
import { kmsError, validationError, type KmsError } from "../errors.js";
import { ModuleLoadError } from "../pkcs11/pkcs11Module.js";
import {
  Pkcs11ConfigError,
  Pkcs11Token,
  tokenLabels,
  TokenUnavailableError,
  type Connection,
  type Handle,
} from "../pkcs11/pkcs11Token.js";
import { gcmOpenWithToken, gcmSealWithToken, generateTokenAesKey } from "../pkcs11/tokenGcm.js";
import type { CustomKeyStoreRecord } from "./customKeyStoreRecord.js";
import { ConnectFailed, type KeyStoreConnection, type KeyStoreType } from "./customKeyStores.js";

const CLUSTER_PREFIX = "cluster-";
/** Key handles found in this connection's token, by key id (valid only for that connection). */
type KeyHandles = Map<string, Handle>;

export interface CloudHsmKeyStoreOptions {
  /** The PKCS#11 module the tokens are reached through; without one, no store can be created. */
  readonly modulePath: string | undefined;
  readonly logger?: Logger;
  /** Pool and timer settings of each token (tests shorten them). */
  readonly token?: {
    readonly sessions?: number;
    readonly operationTimeoutMs?: number;
    readonly reconnectIntervalMs?: number;
    readonly healthCheckIntervalMs?: number;
  };
}

export const tokenLabelOf = (clusterId: string): string => clusterId.slice(CLUSTER_PREFIX.length);

const XKS_MEMBERS = [
  "XksProxyUriEndpoint",
  "XksProxyUriPath",
  "XksProxyVpcEndpointServiceName",
  "XksProxyVpcEndpointServiceOwner",
  "XksProxyAuthenticationCredential",
  "XksProxyConnectivity",
] as const;

function noXksMembers(input: Partial<Record<(typeof XKS_MEMBERS)[number], unknown>>): void {
  const given = XKS_MEMBERS.filter((m) => input[m] !== undefined);
  if (given.length > 0)
    throw kmsError(
      "ValidationException",
      `${given.join(", ")} apply only to EXTERNAL_KEY_STORE custom key stores.`,
    );
}

export function cloudHsmKeyStoreType(options: CloudHsmKeyStoreOptions): KeyStoreType {
  const { modulePath, logger } = options;

  /** The cluster id, if no other store uses it and its token is there. */
  function checkCluster(clusterId: string, others: readonly CustomKeyStoreRecord[]): void {
    if (others.some((r) => r.settings["cloudHsmClusterId"] === clusterId))
      throw kmsError(
        "CloudHsmClusterInUseException",
        `${clusterId} is the cluster of another custom key store.`,
      );
    const label = tokenLabelOf(clusterId);
    const notFound = (why: string): KmsError =>
      kmsError(
        "CloudHsmClusterNotFoundException",
        `Cluster ${clusterId} (token '${label}'): ${why}.`,
      );
    if (modulePath === undefined)
      throw notFound("no PKCS#11 module is configured (keyhaven serve --pkcs11-module PATH)");
    let labels: string[];
    try {
      labels = tokenLabels(modulePath);
    } catch (err) {
      if (err instanceof ModuleLoadError || err instanceof pkcs11js.Pkcs11Error)
        throw notFound(`the PKCS#11 module does not answer (${err.message})`);
      throw err;
    }
    if (!labels.includes(label)) throw notFound("no token has that label");
  }

  return {
    type: "AWS_CLOUDHSM",

    async create(input: CreateCustomKeyStoreRequest, others) {
      noXksMembers(input);
      const missing = (["CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"] as const)
        .filter((m) => input[m] === undefined)
        .map((m) => `${m} is required for an AWS_CLOUDHSM custom key store`);
      if (missing.length > 0) throw validationError(missing);
      checkCluster(input.CloudHsmClusterId!, others);
      return {
        settings: {
          cloudHsmClusterId: input.CloudHsmClusterId!,
          trustAnchorCertificate: input.TrustAnchorCertificate!,
        },
        secret: input.KeyStorePassword!,
      };
    },

    async update(input: UpdateCustomKeyStoreRequest, record, others) {
      noXksMembers(input);
      const clusterId = input.CloudHsmClusterId;
      if (clusterId !== undefined && clusterId !== record.settings["cloudHsmClusterId"])
        checkCluster(clusterId, others);
      return {
        ...(clusterId !== undefined && {
          settings: { ...record.settings, cloudHsmClusterId: clusterId },
        }),
        ...(input.KeyStorePassword !== undefined && { secret: input.KeyStorePassword }),
        changes: clusterId !== undefined || input.KeyStorePassword !== undefined,
      };
    },

    describe: (record) => ({
      ...(record.settings["cloudHsmClusterId"] !== undefined && {
        CloudHsmClusterId: record.settings["cloudHsmClusterId"],
      }),
      ...(record.settings["trustAnchorCertificate"] !== undefined && {
        TrustAnchorCertificate: record.settings["trustAnchorCertificate"],
      }),
    }),

    keyMetadata: (record) => ({
      ...(record.settings["cloudHsmClusterId"] !== undefined && {
        CloudHsmClusterId: record.settings["cloudHsmClusterId"],
      }),
    }),

    async connect(record, secret) {
      const clusterId = record.settings["cloudHsmClusterId"] ?? "";
      if (modulePath === undefined)
        throw new ConnectFailed("no PKCS#11 module is configured", "CLUSTER_NOT_FOUND");
      if (secret === undefined)
        throw new ConnectFailed("no key store password", "INVALID_CREDENTIALS");
      let token: Pkcs11Token<KeyHandles>;
      try {
        token = Pkcs11Token.open<KeyHandles>({
          ...options.token,
          modulePath,
          tokenLabel: tokenLabelOf(clusterId),
          pin: secret,
          pinSource: "the custom key store's KeyStorePassword (UpdateCustomKeyStore)",
          purpose: `custom key store ${record.id}`,
          prepare: () => new Map(),
          ...(logger && { logger }),
        });
      } catch (err) {
        if (err instanceof Pkcs11ConfigError) throw new ConnectFailed(err.message, err.code);
        throw err;
      }
      const down = token.readiness();
      if (down !== undefined) {
        const code = token.errorCode ?? "NETWORK_ERRORS";
        await token.close();
        throw new ConnectFailed(down, code);
      }
      return tokenConnection(token);
    },
  };
}

/** Runs `fn` on the token; an unreachable token is KeyUnavailableException (500: clients retry). */
async function onToken<T>(
  token: Pkcs11Token<KeyHandles>,
  fn: (c: Connection<KeyHandles>, session: Handle) => Promise<T>,
): Promise<T> {
  try {
    return await token.withSession(fn);
  } catch (err) {
    if (err instanceof TokenUnavailableError)
      throw kmsError(
        "KeyUnavailableException",
        `The HSM of the custom key store is unavailable now (${token.readiness() ?? "busy"}); the request can be retried.`,
      );
    throw err;
  }
}

/** The key labelled `keyId` in the token (cached per connection). */
function findKey(c: Connection<KeyHandles>, session: Handle, keyId: string): Handle {
  const cached = c.prepared.get(keyId);
  if (cached) return cached;
  c.lib.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: keyId },
  ]);
  let found: Handle[];
  try {
    found = c.lib.C_FindObjects(session, 2);
  } finally {
    c.lib.C_FindObjectsFinal(session);
  }
  if (found.length !== 1 || !found[0])
    throw kmsError(
      "KMSInvalidStateException",
      `The key material of ${keyId} is not in its custom key store's token (${found.length} keys have its label).`,
    );
  c.prepared.set(keyId, found[0]);
  return found[0];
}

function tokenConnection(token: Pkcs11Token<KeyHandles>): KeyStoreConnection {
  return {
    createKey: ({ keyId }) =>
      onToken(token, async (c, session) => {
        const handle = generateTokenAesKey(c.lib, session, keyId, Buffer.from(keyId));
        c.prepared.set(keyId, handle);
      }),
    gcm: (keyId) => ({
      seal: (iv, plaintext, aad) =>
        onToken(token, (c, session) =>
          gcmSealWithToken(c, session, findKey(c, session, keyId), iv, plaintext, aad),
        ),
      open: (iv, sealed, aad) =>
        onToken(token, (c, session) =>
          gcmOpenWithToken(c, session, findKey(c, session, keyId), iv, sealed, aad),
        ),
    }),
    deleteKey: (keyId) =>
      onToken(token, async (c, session) => {
        const handle = findKey(c, session, keyId);
        c.prepared.delete(keyId);
        c.lib.C_DestroyObject(session, handle);
      }),
    close: () => token.close(),
  };
}
