/**
 * The issuer's JWKS fetched over HTTPS — in a cluster, the API server's
 * `https://kubernetes.default.svc/openid/v1/jwks`, read with the pod's own
 * ServiceAccount token and the cluster CA (the in-cluster files by default). Fetched
 * at start (a failure stops the start), then refreshed every few minutes and when a
 * token names a key the set does not hold; the last good set is kept on failure.
 */
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { parseJwks, type JwksKey } from "./jwt.js";

export const IN_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
export const IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export interface JwksUrlOptions {
  /** CA bundle for the server's certificate; the in-cluster CA when present. */
  readonly caFile?: string;
  /** Bearer token file (re-read on every fetch: projected tokens rotate); the in-cluster one when present. */
  readonly tokenFile?: string;
  readonly refreshMs?: number;
  /** Unforced refreshes (unknown key ids) happen at most this often (default one minute). */
  readonly minRefreshMs?: number;
  readonly timeoutMs?: number;
}

export interface JwksSource {
  keys(): readonly JwksKey[];
  /** Fetches again; keeps the current keys if that fails. At most once a minute unless forced. */
  refresh(force?: boolean): Promise<void>;
  close(): void;
}

function fetchText(url: string, options: JwksUrlOptions): Promise<string> {
  const caFile = options.caFile ?? (existsSync(IN_CLUSTER_CA) ? IN_CLUSTER_CA : undefined);
  const tokenFile =
    options.tokenFile ?? (existsSync(IN_CLUSTER_TOKEN) ? IN_CLUSTER_TOKEN : undefined);
  const token = tokenFile ? readFileSync(tokenFile, "utf8").trim() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "GET",
        headers: {
          // The API server offers its JWKS only as application/jwk-set+json and answers
          // 406 to a bare application/json; other issuers serve application/json.
          accept: "application/jwk-set+json, application/json",
          ...(token && { authorization: `Bearer ${token}` }),
        },
        ...(caFile && { ca: readFileSync(caFile) }),
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) req.destroy(new Error("the JWKS is larger than 1 MiB"));
          else chunks.push(c);
        });
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200)
            reject(new Error(`GET ${url} answered ${res.statusCode}: ${body.slice(0, 200)}`));
          else resolve(body);
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

export async function jwksFromUrl(url: string, options: JwksUrlOptions = {}): Promise<JwksSource> {
  let keys = parseJwks(await fetchText(url, options));
  let fetchedAt = Date.now();
  let pending: Promise<void> | undefined;
  const refresh = (force = false): Promise<void> => {
    if (!force && Date.now() - fetchedAt < (options.minRefreshMs ?? 60_000))
      return Promise.resolve();
    pending ??= fetchText(url, options)
      .then((text) => {
        keys = parseJwks(text);
        fetchedAt = Date.now();
      })
      .catch(() => {
        // Keep the last good keys; the next refresh tries again.
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  const timer = setInterval(() => void refresh(true), options.refreshMs ?? 5 * 60_000);
  timer.unref();
  return { keys: () => keys, refresh, close: () => clearInterval(timer) };
}
