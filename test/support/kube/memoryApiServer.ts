/**
 * The embedded API server with test hooks: every request counted (by verb and plural,
 * e.g. "patch kmskeys/status"), errors injected per request, open watches counted.
 */
import {
  EmbeddedApiServer,
  type RequestInfo,
  type Verb,
} from "../../../src/kube/embedded/apiServer.js";
import type { KubeApiError } from "../../../src/kube/errors.js";

export { defaultResourceTypes, mergePatch } from "../../../src/kube/embedded/apiServer.js";

/** Returns an error to fail a request with, or undefined to let it through. */
export type Injector = (request: RequestInfo) => KubeApiError | undefined;

export class MemoryApiServer extends EmbeddedApiServer {
  #injectors: Injector[] = [];
  /** Requests served, by verb and plural (e.g. "patch kmskeys/status"). */
  readonly requests = new Map<string, number>();
  #watchers = 0;

  protected override received(request: RequestInfo): void {
    const label = `${request.verb} ${request.plural}${request.subresource ? `/${request.subresource}` : ""}`;
    this.requests.set(label, (this.requests.get(label) ?? 0) + 1);
    for (const injector of this.#injectors) {
      const err = injector(request);
      if (err) throw err;
    }
  }

  /** Adds an error injector; returns a function that removes it. */
  inject(injector: Injector): () => void {
    this.#injectors.push(injector);
    return () => {
      this.#injectors = this.#injectors.filter((i) => i !== injector);
    };
  }

  override watch(...args: Parameters<EmbeddedApiServer["watch"]>): () => void {
    const stop = super.watch(...args);
    this.#watchers++;
    let open = true;
    return () => {
      if (open) this.#watchers--;
      open = false;
      stop();
    };
  }

  /** Number of open watches (for tests on leaks). */
  get watchers(): number {
    return this.#watchers;
  }

  totalRequests(verb?: Verb): number {
    let n = 0;
    for (const [label, count] of this.requests)
      if (verb === undefined || label.startsWith(`${verb} `)) n += count;
    return n;
  }
}
