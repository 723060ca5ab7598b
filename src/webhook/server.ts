/**
 * The admission server: HTTPS only, `POST /mutate-pods` (AdmissionReview v1), plus
 * `/healthz` and `/readyz`. The serving certificate can be replaced while running
 * (`setCertificate`): new TLS connections use it at once, open ones finish with the old.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { readBody } from "../http/readBody.js";
import type { Logger } from "../observability/logger.js";
import { refusal, reviewAdmission, type AdmissionOptions } from "./admissionReview.js";

export const MUTATE_PATH = "/mutate-pods";
/** The API server sends at most ~3 MiB objects; a pod is far smaller. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface ServingCertificate {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface WebhookServerOptions extends AdmissionOptions {
  readonly certificate: ServingCertificate;
  readonly logger: Logger;
}

export class WebhookServer {
  readonly server: Server;
  readonly #options: WebhookServerOptions;
  #certificate: ServingCertificate;

  constructor(options: WebhookServerOptions) {
    this.#options = options;
    this.#certificate = options.certificate;
    this.server = createServer(
      { cert: options.certificate.cert, key: options.certificate.key, minVersion: "TLSv1.2" },
      (req, res) => void this.#handle(req, res),
    );
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.requestTimeout = 30_000;
  }

  /** Hot-swaps the serving certificate (every replica, when the Secret changes). */
  setCertificate(certificate: ServingCertificate): void {
    this.server.setSecureContext({
      cert: certificate.cert,
      key: certificate.key,
      minVersion: "TLSv1.2",
    });
    this.#certificate = certificate;
  }

  get certificate(): ServingCertificate {
    return this.#certificate;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    try {
      if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      }
      if (path !== MUTATE_PATH) {
        res
          .writeHead(404, { "content-type": "text/plain" })
          .end(`not found; POST AdmissionReviews to ${MUTATE_PATH}\n`);
        return;
      }
      if (req.method !== "POST") {
        res.writeHead(405, { allow: "POST", "content-type": "text/plain" }).end("use POST\n");
        return;
      }
      const body = await readBody(req, MAX_BODY_BYTES);
      const out =
        body === undefined
          ? refusal("", 413, "keyhaven: the AdmissionReview is larger than 4 MiB")
          : await reviewAdmission(body, this.#options);
      const text = JSON.stringify(out);
      res
        .writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
        })
        .end(text);
    } catch (err) {
      this.#options.logger.error(
        { err: err instanceof Error ? { name: err.name, message: err.message } : String(err) },
        "webhook request failed",
      );
      if (!res.headersSent)
        res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
      else res.destroy();
    }
  }
}
