/**
 * A loopback HTTP fake of the Kubernetes API server, for the real
 * @kubernetes/client-node: the MemoryApiServer's semantics behind the REST paths
 * client-node uses (custom resources and their /status, Leases, Events), list with
 * resourceVersion, chunked watch streams (an expired resourceVersion gets the
 * API server's ERROR event with a 410 Status), JSON merge and JSON patch, and the
 * CRD schemas read from crds/*.yaml. Faults can be injected per request.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parse } from "yaml";
import type { Schema } from "../../src/api/v1alpha1/schemas.js";
import type { KindName } from "../../src/api/v1alpha1/types.js";
import type { Clock } from "../../src/time.js";
import { KubeApiError } from "../../src/kube/cluster.js";
import { defaultResourceTypes, MemoryApiServer } from "../support/kube/memoryApiServer.js";
import { REPO_ROOT } from "../support/server.js";

/** openAPIV3Schema of each kind, read from crds/. */
export function schemasFromCrds(dir = join(REPO_ROOT, "crds")): Record<KindName, Schema> {
  const out: Partial<Record<KindName, Schema>> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(dir, file), "utf8")) as {
      spec: { names: { kind: KindName }; versions: { schema: { openAPIV3Schema: Schema } }[] };
    };
    out[crd.spec.names.kind] = crd.spec.versions[0]!.schema.openAPIV3Schema;
  }
  return out as Record<KindName, Schema>;
}

export type WatchFault = "gone" | "http410" | "error500" | "close" | undefined;

export interface HttpApiServer {
  readonly url: string;
  readonly api: MemoryApiServer;
  /** Requests by "METHOD kind" (e.g. "GET list kmskeys", "WATCH kmskeys", "PATCH kmskeys/status"). */
  readonly requests: Map<string, number>;
  /** Decides, for each new watch, whether it fails (and how). */
  watchFault: (plural: string) => WatchFault;
  /** Ends every open watch stream (as an API server restart or a load balancer would). */
  closeWatches(): void;
  count(prefix: string): number;
  stop(): Promise<void>;
}

const statusBody = (code: number, reason: string, message: string) =>
  JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  });

export async function startHttpApiServer(
  options: { clock?: Clock; historyLimit?: number; crdsDir?: string } = {},
): Promise<HttpApiServer> {
  const api = new MemoryApiServer({
    types: defaultResourceTypes(schemasFromCrds(options.crdsDir)),
    ...(options.clock && { clock: options.clock }),
    ...(options.historyLimit !== undefined && { historyLimit: options.historyLimit }),
  });
  const requests = new Map<string, number>();
  const streams = new Set<ServerResponse>();
  const count = (label: string) => requests.set(label, (requests.get(label) ?? 0) + 1);
  const handle: HttpApiServer = {
    url: "",
    api,
    requests,
    watchFault: () => undefined,
    closeWatches() {
      for (const s of streams) s.end();
      streams.clear();
    },
    count(prefix) {
      let n = 0;
      for (const [k, v] of requests) if (k.startsWith(prefix)) n += v;
      return n;
    },
    stop: async () => {},
  };

  const server: Server = createServer((req, res) => {
    void route(req, res).catch((err: unknown) => {
      const e =
        err instanceof KubeApiError ? err : new KubeApiError(500, "InternalError", String(err));
      if (!res.headersSent) res.writeHead(e.status, { "content-type": "application/json" });
      res.end(statusBody(e.status, e.reason, e.message));
    });
  });

  async function body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const parts = url.pathname.split("/").filter(Boolean);
    // /apis/<group>/<version>/... or /api/v1/...
    const rest = parts[0] === "api" ? parts.slice(2) : parts.slice(3);
    let namespace: string | undefined;
    let i = 0;
    if (rest[0] === "namespaces") {
      namespace = rest[1];
      i = 2;
    }
    const plural = rest[i];
    const name = rest[i + 1];
    const subresource = rest[i + 2] as "status" | undefined;
    if (!plural) throw new KubeApiError(404, "NotFound", `no route for ${url.pathname}`);
    const json = (status: number, obj: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(obj));
    };
    const method = req.method ?? "GET";
    if (method === "GET" && !name) {
      if (url.searchParams.get("watch") === "true") {
        count(`WATCH ${plural}`);
        return watchStream(
          res,
          plural,
          url.searchParams.get("resourceVersion") ?? "",
          namespace,
          Number(url.searchParams.get("timeoutSeconds") ?? 0),
        );
      }
      count(`GET list ${plural}`);
      const list = api.list(plural, namespace);
      return json(200, {
        apiVersion: "v1",
        kind: "List",
        metadata: { resourceVersion: list.resourceVersion },
        items: list.items,
      });
    }
    if (!namespace) throw new KubeApiError(404, "NotFound", `no route for ${url.pathname}`);
    count(`${method} ${plural}${subresource ? `/${subresource}` : ""}`);
    switch (method) {
      case "GET":
        return json(200, api.get(plural, namespace, name!));
      case "POST":
        return json(
          201,
          api.create(plural, namespace, (await body(req)) as Record<string, unknown>),
        );
      case "PUT":
        return json(
          200,
          api.replace(
            plural,
            namespace,
            name!,
            (await body(req)) as Record<string, unknown>,
            subresource,
          ),
        );
      case "PATCH": {
        const type = req.headers["content-type"] ?? "";
        const kind = type.startsWith("application/merge-patch+json")
          ? "merge"
          : type.startsWith("application/json-patch+json")
            ? "json"
            : undefined;
        if (!kind)
          throw new KubeApiError(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got ${type})`,
          );
        return json(200, api.patch(plural, namespace, name!, kind, await body(req), subresource));
      }
      case "DELETE":
        return json(200, api.delete(plural, namespace, name!));
      default:
        throw new KubeApiError(405, "MethodNotAllowed", `${method} is not allowed`);
    }
  }

  function watchStream(
    res: ServerResponse,
    plural: string,
    rv: string,
    namespace: string | undefined,
    timeoutSeconds: number,
  ): void {
    const fault = handle.watchFault(plural);
    if (fault === "http410") throw new KubeApiError(410, "Expired", "too old resource version");
    if (fault === "error500") throw new KubeApiError(500, "InternalError", "etcd is unhappy");
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    if (fault === "close") return void res.end();
    // Events can arrive after the client has gone; a closed stream drops them.
    const send = (type: string, object: unknown) => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    let stop: () => void = () => {};
    try {
      if (fault === "gone") throw new KubeApiError(410, "Expired", "too old resource version");
      stop = api.watch(plural, rv, (e) => send(e.type, e.object), namespace);
    } catch (err) {
      const e =
        err instanceof KubeApiError ? err : new KubeApiError(500, "InternalError", String(err));
      send("ERROR", {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: e.message,
        reason: e.reason,
        code: e.status,
      });
      return void res.end();
    }
    streams.add(res);
    const timer =
      timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : undefined;
    timer?.unref();
    res.on("close", () => {
      stop();
      streams.delete(res);
      if (timer) clearTimeout(timer);
    });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  (handle as { url: string }).url = `http://127.0.0.1:${port}`;
  handle.stop = async () => {
    handle.closeWatches();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return handle;
}

/** A kubeconfig (YAML text) pointing client-node at the fake. */
export function kubeconfigFor(url: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: fake`,
    `  cluster: { server: "${url}", insecure-skip-tls-verify: true }`,
    "users:",
    "- name: fake",
    "  user: { token: fake-token }",
    "contexts:",
    "- name: fake",
    "  context: { cluster: fake, user: fake }",
    "current-context: fake",
    "",
  ].join("\n");
}
