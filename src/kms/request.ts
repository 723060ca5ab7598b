/**
 * One request to the key service as operations see it: who calls, what it asks,
 * and the authorizer that decides (chosen at start-up, see access/policyAuthorizer.ts).
 */
import type { Principal } from "./authz/principal.js";
import type { Credential } from "./identity/credentialsFile.js";
import type { KeyService } from "./keyService.js";
import type { KeyRecord } from "./keys/keyRecord.js";

export interface Caller {
  /** The IAM-style principal ARN the request was authenticated as. */
  readonly principal: string;
  readonly accessKeyId: string;
  readonly account: string;
  /**
   * Tags and caller policies of the principal (see authz/principal.ts), resolved when the
   * credential was loaded; no policies = nothing allowed.
   */
  readonly identity: Principal;
}

/** The caller a verified credential makes (its account is the principal ARN's). */
export function callerOf(credential: Credential): Caller {
  let caller = callers.get(credential);
  if (caller === undefined) {
    caller = {
      principal: credential.principal,
      accessKeyId: credential.accessKeyId,
      account: credential.principal.split(":")[4] ?? "",
      identity: credential.identity,
    };
    callers.set(credential, caller);
  }
  return caller;
}

/** The Caller of each credential, made once: it depends on nothing else. */
const callers = new WeakMap<Credential, Caller>();

export interface RequestContext {
  readonly service: KeyService;
  /** Decides every access the request makes (see access/useKey.ts). */
  readonly authorizer: Authorizer;
  readonly caller: Caller;
  readonly requestId: string;
  readonly sourceIp: string;
  readonly secureTransport: boolean;
  /** The operation name from X-Amz-Target, e.g. "Encrypt". */
  readonly operation: string;
  /** Key ARNs the request acted on, for the audit record. */
  readonly resources: string[];
  /** The decoded request, for condition keys (encryption context, grant tokens, tags). */
  readonly input?: Readonly<Record<string, unknown>> | undefined;
  /** More condition keys of the request, lower-case (the XKS proxy's `xks:*` request metadata). */
  readonly conditions?: ReadonlyMap<string, readonly string[]>;
  /**
   * A MAC over `data` under this request's SigV4 signing key (protocol/sigv4.ts signerProof),
   * for answers the caller must be able to authenticate (the peering key).
   */
  readonly proveToSigner?: (data: string) => string;
}

export interface AccessRequest {
  /** IAM action, e.g. "kms:Encrypt". */
  readonly action: string;
  /** The key acted on; absent for account-level actions (CreateKey, ListKeys, ...). */
  readonly key?: KeyRecord;
  /** A resource that is not a key (an alias ARN); caller policies alone decide on it. */
  readonly resource?: string;
}

/** Who may do what. */
export interface Authorizer {
  /** Throws AccessDeniedException unless the caller of `ctx` may perform `request`. */
  authorize(ctx: RequestContext, request: AccessRequest): Promise<void>;
  /**
   * PutKeyPolicy's and CreateKey's lockout safety check: throws
   * MalformedPolicyDocumentException unless the caller would still be allowed
   * kms:PutKeyPolicy on `key` under `policyText`.
   */
  checkPolicyLockout(
    ctx: RequestContext,
    policyText: string,
    key: { readonly keyId: string; readonly arn: string },
  ): Promise<void>;
}
