/**
 * The key service's HTTP(S) front: AWS KMS JSON 1.1 (`POST /`, `X-Amz-Target:
 * TrentService.<Operation>`), SigV4 on every request, model-driven validation, one
 * audit line per request, `/healthz` and `/readyz`, and graceful shutdown.
 */
import { randomUUID } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { readBody } from "../../http/readBody.js";
import type { Logger } from "pino";
import { lineFormatter, type LineFormatter } from "../../observability/logger.js";
import { AuditBatch } from "./auditBatch.js";
import type { Credential } from "../identity/credentialsFile.js";
import { KmsError, kmsError } from "../errors.js";
import type { KeyService } from "../keyService.js";
import type { KeyServiceMetrics } from "../metrics/keyServiceMetrics.js";
import { operations } from "../operations/index.js";
import { callerOf, type Authorizer, type RequestContext } from "../request.js";
import { decodeInput, encodeOutput, modelledOperations } from "./model.js";
import { signerProof, verifySigV4 } from "./sigv4.js";
import type { XksAnswer, XksProxy } from "../xks/proxy.js";
import { XKS_CONTENT_TYPE } from "../xks/wire.js";
import {
  auditRecordText,
  userIdentity,
  type AuditCaller,
  type AuditEventInput,
  type UserIdentity,
} from "../audit/auditRecord.js";
import {
  StsError,
  type SessionCredential,
  type WebIdentityProvider,
} from "../identity/webIdentity.js";
import {
  assumeRoleRequestParameters,
  assumeRoleResponseElements,
  assumeRoleWithWebIdentityXml,
  getCallerIdentityXml,
  STS_CONTENT_TYPE,
  stsErrorXml,
} from "./sts.js";

export interface KmsServerOptions {
  readonly service: KeyService;
  /** Every Region served (`serve --region A,B`), the signing Region picking one; `service` alone when absent. */
  readonly regions?: ReadonlyMap<string, KeyService>;
  /** Decides every request's access (access/policyAuthorizer.ts in `serve`). */
  readonly authorizer: Authorizer;
  /** Finds the credential of an access key id (static, or temporary with its session token). */
  readonly credentials: (accessKeyId: string, sessionToken?: string) => Credential | undefined;
  /** STS AssumeRoleWithWebIdentity; absent = web identity is not configured. */
  readonly webIdentity?: WebIdentityProvider;
  readonly logger: Logger;
  /** Where audit lines go (one per request). */
  readonly audit: Logger;
  readonly maxBodyBytes?: number;
  /** Counts every request and serves GET /metrics (unauthenticated, like /healthz). */
  readonly metrics?: KeyServiceMetrics;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** The XKS Proxy API under its path on this listener (--xks-proxy-uri-path). */
  readonly xks?: XksProxy;
}

const TARGET_PREFIX = "TrentService.";
const JSON_CONTENT_TYPE = "application/x-amz-json-1.1";
export const DEFAULT_MAX_BODY_BYTES = 512 * 1024;

export class KmsServer {
  readonly server: Server;
  readonly #options: KmsServerOptions;
  readonly #maxBody: number;
  readonly #secure: boolean;
  /** One pre-serialised audit line per request (see lineFormatter). */
  readonly #auditLines: LineFormatter;
  /** This event-loop turn's audit lines, written together before their answers. */
  readonly #auditBatch: AuditBatch;
  #ready = false;
  #inFlight = 0;
  #auditFailed = false;

  constructor(options: KmsServerOptions) {
    this.#options = options;
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#secure = options.tls !== undefined;
    this.#auditLines = lineFormatter(options.audit);
    this.#auditBatch = new AuditBatch({
      write: (lines) => this.#auditLines.write(lines),
      written: (failed, error) => this.#auditWritten(failed, error),
      answerFailed: (err) =>
        options.logger.error(
          { err: { type: (err as Error)?.name, message: (err as Error)?.message } },
          "sending an answer failed",
        ),
    });
    const listener = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.server = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
      : createHttpServer(listener);
    // SDKs keep connections open between calls; stay longer than their idle timeouts, and
    // bound how long a slow client may hold a request open.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.requestTimeout = 30_000;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.#ready = true;
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting work, lets requests in flight finish (up to `graceMs`), then closes. */
  async close(graceMs = 10_000): Promise<void> {
    this.#ready = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = setTimeout(() => this.server.closeAllConnections(), graceMs);
    deadline.unref();
    await closed;
    clearTimeout(deadline);
  }

  /** The Region a request is signed for picks the key service; the signature check still follows. */
  #serviceFor(req: IncomingMessage): KeyService {
    const regions = this.#options.regions;
    if (regions === undefined) return this.#options.service;
    const scope = /Credential=[^/,]*\/\d{8}\/([^/,]+)\//.exec(req.headers.authorization ?? "");
    return (scope && regions.get(scope[1]!)) ?? this.#options.service;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    if (req.method === "GET" && path === "/healthz") return this.#plain(res, 200, "ok");
    if (req.method === "GET" && path === "/readyz") {
      if (!this.#ready) return this.#plain(res, 503, "shutting down");
      const reason = this.#options.service.rootKey.readiness?.();
      return reason
        ? this.#plain(res, 503, `root key unavailable: ${reason}`)
        : this.#plain(res, 200, "ready");
    }
    if (req.method === "GET" && path === "/metrics" && this.#options.metrics)
      return this.#metrics(res, this.#options.metrics);
    const xks = this.#options.xks;
    if (xks && path !== undefined && xks.claims(path)) return this.#xks(req, res, xks);
    if (
      req.method === "POST" &&
      path === "/" &&
      req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded")
    )
      return this.#sts(req, res);

    this.#inFlight++;
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const target = req.headers["x-amz-target"];
    const operation =
      typeof target === "string" && target.startsWith(TARGET_PREFIX)
        ? target.slice(TARGET_PREFIX.length)
        : undefined;
    let ctx: RequestContext | undefined;
    let credential: Credential | undefined;
    let output: object | undefined;
    let errorCode: string | undefined;
    let errorMessage: string | undefined;
    let status = 200;
    let reply: unknown;
    try {
      if (this.#auditFailed) throw auditUnavailable(requestId);
      if (req.method !== "POST" || path !== "/")
        throw kmsError("UnknownOperationException", "Keyhaven serves the KMS API at POST /.");
      const body = await readBody(req, this.#maxBody);
      if (body === undefined) {
        res.setHeader("connection", "close");
        throw kmsError(
          "RequestEntityTooLargeException",
          `Request bodies are limited to ${this.#maxBody} bytes.`,
        );
      }
      const service = this.#serviceFor(req);
      const headers = req.headersDistinct;
      credential = verifySigV4(
        { method: req.method, url, headers, body },
        {
          service: "kms",
          region: service.region,
          now: service.clock.now(),
          lookup: this.#options.credentials,
          requiredSignedHeaders: ["x-amz-target"],
        },
      );
      const signer = credential;
      const handler = operation === undefined ? undefined : operations.get(operation);
      if (!handler) {
        if (operation !== undefined && modelledOperations.has(operation)) {
          throw kmsError(
            "UnsupportedOperationException",
            `${operation} is not supported by Keyhaven.`,
          );
        }
        throw kmsError(
          "UnknownOperationException",
          typeof target === "string"
            ? `Unknown operation ${target}`
            : "Missing X-Amz-Target header.",
        );
      }
      let json: unknown;
      try {
        json = body.length === 0 ? {} : JSON.parse(body.toString("utf8"));
      } catch {
        throw kmsError("SerializationException", "The request body is not valid JSON.");
      }
      const context = (input?: Record<string, unknown>): RequestContext => ({
        service,
        authorizer: this.#options.authorizer,
        caller: callerOf(signer),
        requestId,
        sourceIp: req.socket.remoteAddress ?? "",
        secureTransport: this.#secure,
        operation: operation!,
        resources: [],
        proveToSigner: (data) => signerProof(headers["authorization"]![0]!, signer, data),
        input,
      });
      // The caller is known from here on, also to the audit line of input refused below.
      ctx = context();
      const input = decodeInput(operation!, json);
      ctx = context(input);
      output = await handler(ctx, input);
      reply = encodeOutput(operation!, output);
    } catch (err) {
      let error: KmsError;
      if (err instanceof KmsError) {
        error = err;
      } else {
        this.#options.logger.error(
          {
            requestId,
            operation,
            err: {
              type: (err as Error)?.name,
              message: (err as Error)?.message,
              stack: (err as Error)?.stack,
            },
          },
          "request failed",
        );
        error = kmsError(
          "KMSInternalException",
          `An internal error occurred. Request ID: ${requestId}.`,
        );
      }
      errorCode = error.code;
      errorMessage = error.message;
      status = error.status;
      reply = { __type: error.code, message: error.message };
    } finally {
      this.#inFlight--;
    }
    // The audit line is written before the answer leaves; without it, no answer but 500.
    this.#audit(
      req,
      {
        requestId,
        eventTime: this.#options.service.clock.now(),
        eventSource: "kms.amazonaws.com",
        eventName: operation ?? "Unknown",
        userIdentity: ctx && credential ? identityOf(credential) : UNKNOWN_IDENTITY,
        requestParameters: ctx?.input,
        responseElements: output,
        resources: ctx?.resources ?? [],
        ...(errorCode !== undefined && { errorCode, errorMessage: errorMessage ?? "" }),
      },
      {
        operation: operation ?? null,
        principal: ctx?.caller.principal ?? null,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      },
      "kms request",
      ctx?.service,
      (audited) => {
        this.#options.metrics?.request(
          operation,
          audited ? errorCode : "KMSInternalException",
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        if (audited) return this.#json(res, status, requestId, reply);
        const refused = auditUnavailable(requestId);
        this.#json(res, refused.status, requestId, {
          __type: refused.code,
          message: refused.message,
        });
      },
    );
  }

  /**
   * The audit line of one request (KMS, STS or XKS): the CloudTrail-shaped record, then
   * `fields` and the outcome for log search. `answer` runs once the line is written (with
   * the other lines of this event-loop turn, see AuditBatch), told whether it was.
   */
  #audit(
    req: IncomingMessage,
    event: AuditEventInput,
    fields: Readonly<Record<string, unknown>>,
    message: string,
    // The Region that served the request (serve --region A,B); undefined: the only one.
    served: KeyService | undefined,
    answer: (audited: boolean) => void,
  ): void {
    const service = served ?? this.#options.service;
    let line: string;
    try {
      const record = auditRecordText(event, {
        eventId: randomUUID(),
        region: service.region,
        account: service.account,
        sourceIp: req.socket.remoteAddress ?? "",
        userAgent: req.headers["user-agent"],
      });
      const extra = JSON.stringify(fields);
      const outcome = event.errorCode === undefined ? "success" : "error";
      line = this.#auditLines.formatJson(
        `${record},${extra.length > 2 ? `${extra.slice(1, -1)},` : ""}"outcome":"${outcome}"`,
        message,
      );
    } catch (err) {
      this.#auditWritten(true, err);
      return answer(false);
    }
    this.#auditBatch.add(line, answer);
  }

  /**
   * After each audit write. After a failure, requests are refused before they act until a
   * line (the refusal's own) can be written again.
   */
  #auditWritten(failed: boolean, err?: unknown): void {
    if (failed) {
      if (!this.#auditFailed)
        this.#options.logger.error(
          { err: { type: (err as Error)?.name, message: (err as Error)?.message } },
          "audit log unavailable: refusing requests until an audit line can be written",
        );
      this.#auditFailed = true;
      return;
    }
    if (this.#auditFailed) this.#options.logger.warn("audit log writable again: serving requests");
    this.#auditFailed = false;
  }

  /** The XKS Proxy API (xks/proxy.ts): one audit line per request, as for KMS requests. */
  async #xks(req: IncomingMessage, res: ServerResponse, xks: XksProxy): Promise<void> {
    this.#inFlight++;
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const service = this.#options.service;
    const refused = {
      errorName: "InternalException",
      errorMessage: `The audit log is unavailable, so the request was refused; retry later. Request ID: ${requestId}.`,
    };
    let answer: XksAnswer;
    let body: Buffer | undefined;
    try {
      if (this.#auditFailed) {
        answer = {
          status: 500,
          body: refused,
          eventName: "Unknown",
          resources: [],
          errorCode: "InternalException",
          errorMessage: refused.errorMessage,
        };
      } else {
        body = await readBody(req, this.#maxBody);
        answer = await xks.handle({
          method: req.method ?? "",
          url: req.url ?? "/",
          headers: req.headersDistinct,
          body,
          requestId,
          sourceIp: req.socket.remoteAddress ?? "",
          secureTransport: this.#secure,
        });
      }
    } finally {
      this.#inFlight--;
    }
    this.#audit(
      req,
      {
        requestId,
        eventTime: service.clock.now(),
        eventSource: "kms-xks-proxy",
        eventName: answer.eventName,
        userIdentity: userIdentity(answer.caller && auditCallerOf(answer.caller)),
        requestParameters: answer.requestParameters,
        resources: answer.resources,
        ...(answer.errorCode !== undefined && {
          errorCode: answer.errorCode,
          errorMessage: answer.errorMessage ?? "",
        }),
      },
      {
        operation: `xks:${answer.eventName}`,
        principal: answer.caller?.principal ?? null,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      },
      "xks request",
      service,
      (audited) => {
        const [status, reply] = audited ? [answer.status, answer.body] : [500, refused];
        const payload = JSON.stringify(reply);
        this.#closeAfterIfStopping(res);
        // The rest of an oversized body was not read: the connection cannot carry another request.
        if (body === undefined) res.setHeader("connection", "close");
        res.writeHead(
          status,
          Object.assign({}, answer.headers, {
            "content-type": XKS_CONTENT_TYPE,
            "content-length": Buffer.byteLength(payload),
            "x-amzn-requestid": requestId,
          }),
        );
        res.end(payload);
      },
    );
  }

  /** STS (AWS query protocol): AssumeRoleWithWebIdentity and GetCallerIdentity. */
  async #sts(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#inFlight++;
    const requestId = randomUUID();
    const service = this.#options.service;
    const now = service.clock.now();
    let action = "Unknown";
    let identity: Record<string, unknown> = { type: "Unknown" };
    let requestParameters: Record<string, unknown> | undefined;
    let responseElements: Record<string, unknown> | undefined;
    const resources: string[] = [];
    let errorCode: string | undefined;
    let errorMessage: string | undefined;
    let status = 200;
    let reply: string;
    try {
      if (this.#auditFailed) throw stsAuditUnavailable(requestId);
      const body = await readBody(req, this.#maxBody);
      if (body === undefined)
        throw new StsError("RequestEntityTooLarge", "The request body is too large.", 413);
      const params = new URLSearchParams(body.toString("utf8"));
      action = params.get("Action") ?? "Unknown";
      if (action === "AssumeRoleWithWebIdentity") {
        requestParameters = assumeRoleRequestParameters(params);
        const provider = this.#options.webIdentity;
        if (!provider)
          throw new StsError(
            "InvalidIdentityToken",
            "Web identity is not configured on this key service; start it with --web-identity-jwks and --web-identity-issuer.",
          );
        const result = await provider.assumeRole(params, now);
        identity = {
          type: "WebIdentityUser",
          principalId: `${result.provider}:${result.audience}:${result.subject}`,
          userName: result.subject,
          identityProvider: result.provider,
        };
        resources.push(result.credential.session.roleArn);
        responseElements = assumeRoleResponseElements(result);
        reply = assumeRoleWithWebIdentityXml(result, requestId);
      } else if (action === "GetCallerIdentity") {
        let credential: Credential;
        try {
          credential = verifySigV4(
            { method: "POST", url: req.url ?? "/", headers: req.headersDistinct, body },
            {
              service: "sts",
              region: service.region,
              now,
              lookup: this.#options.credentials,
            },
          );
        } catch (err) {
          if (err instanceof KmsError)
            throw new StsError(
              err.code === "ExpiredTokenException" ? "ExpiredToken" : "InvalidClientTokenId",
              err.message,
              403,
            );
          throw err;
        }
        identity = identityOf(credential);
        reply = getCallerIdentityXml(credential, requestId);
      } else {
        throw new StsError(
          "InvalidAction",
          `Could not find operation ${action} for version ${params.get("Version") ?? "NO_VERSION_SPECIFIED"}; Keyhaven's STS serves AssumeRoleWithWebIdentity and GetCallerIdentity.`,
        );
      }
    } catch (err) {
      let error: StsError;
      if (err instanceof StsError) error = err;
      else {
        this.#options.logger.error(
          {
            requestId,
            action,
            err: { type: (err as Error)?.name, message: (err as Error)?.message },
          },
          "request failed",
        );
        error = new StsError(
          "InternalFailure",
          `An internal error occurred. Request ID: ${requestId}.`,
          500,
        );
      }
      errorCode = error.code;
      errorMessage = error.message;
      status = error.status;
      reply = stsErrorXml(error.code, error.message, requestId);
    } finally {
      this.#inFlight--;
    }
    this.#audit(
      req,
      {
        requestId,
        eventTime: now,
        eventSource: "sts.amazonaws.com",
        eventName: action,
        userIdentity: identity,
        requestParameters,
        responseElements,
        resources,
        ...(errorCode !== undefined && { errorCode, errorMessage: errorMessage ?? "" }),
      },
      { operation: action },
      "sts request",
      service,
      (audited) => {
        this.#options.metrics?.sts(action, audited ? errorCode : "InternalFailure");
        if (audited) return this.#xml(res, status, requestId, reply);
        const refused = stsAuditUnavailable(requestId);
        this.#xml(
          res,
          refused.status,
          requestId,
          stsErrorXml(refused.code, refused.message, requestId),
        );
      },
    );
  }

  #xml(res: ServerResponse, status: number, requestId: string, body: string): void {
    this.#closeAfterIfStopping(res);
    res.writeHead(status, {
      "content-type": STS_CONTENT_TYPE,
      "content-length": Buffer.byteLength(body),
      "x-amzn-requestid": requestId,
    });
    res.end(body);
  }

  #json(res: ServerResponse, status: number, requestId: string, body: unknown): void {
    const payload = JSON.stringify(body);
    this.#closeAfterIfStopping(res);
    res.writeHead(status, {
      "content-type": JSON_CONTENT_TYPE,
      "content-length": Buffer.byteLength(payload),
      "x-amzn-requestid": requestId,
    });
    res.end(payload);
  }

  async #metrics(res: ServerResponse, metrics: KeyServiceMetrics): Promise<void> {
    try {
      const { contentType, body } = await metrics.expose();
      this.#closeAfterIfStopping(res);
      res.writeHead(200, { "content-type": contentType });
      res.end(body);
    } catch (err) {
      this.#options.logger.error(
        { err: { type: (err as Error)?.name, message: (err as Error)?.message } },
        "collecting metrics failed",
      );
      this.#plain(res, 500, "collecting metrics failed; see the key service's log");
    }
  }

  #plain(res: ServerResponse, status: number, text: string): void {
    this.#closeAfterIfStopping(res);
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(text);
  }

  /**
   * While shutting down, answers carry `Connection: close`, so a keep-alive connection that
   * was busy when close() began does not hold the server open until the client drops it.
   */
  #closeAfterIfStopping(res: ServerResponse): void {
    if (!this.#ready) res.setHeader("connection", "close");
  }
}

/** KMSInternalException (500, which SDKs retry): the request's audit line could not be written. */
function auditUnavailable(requestId: string): KmsError {
  return kmsError(
    "KMSInternalException",
    `The audit log is unavailable, so the request was refused; retry later. Request ID: ${requestId}.`,
  );
}

function stsAuditUnavailable(requestId: string): StsError {
  return new StsError("InternalFailure", auditUnavailable(requestId).message, 500);
}

function auditCallerOf(credential: Credential): AuditCaller {
  const session = (credential as Partial<SessionCredential>).session;
  return {
    principal: credential.identity,
    accessKeyId: credential.accessKeyId,
    ...(session && { session }),
  };
}

/** The audit userIdentity of a request whose caller is not known. */
const UNKNOWN_IDENTITY = userIdentity(undefined);

/** The audit userIdentity of each credential, made once: it depends on nothing else. */
const identities = new WeakMap<Credential, UserIdentity>();

function identityOf(credential: Credential): UserIdentity {
  let identity = identities.get(credential);
  if (identity === undefined) {
    identity = userIdentity(auditCallerOf(credential));
    identities.set(credential, identity);
  }
  return identity;
}
