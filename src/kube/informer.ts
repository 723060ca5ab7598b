/**
 * A list+watch cache of one kind that does not give up: the loop lists, watches
 * from the list's resourceVersion, and on any ending decides what next.
 *
 *   watch ended with events ........ watch again from the last resourceVersion
 *   410 Gone (history compacted) ... relist (at once if the watch had delivered events)
 *   error / empty ending ........... back off (1 s doubling to 30 s), then watch or relist
 *   every relistEveryMs ............ relist anyway, to repair anything a watch missed
 *   no ending after the watch timeout + grace: abort it (half-open connections)
 *
 * A list replaces the cache and emits add/update/delete for what changed, so
 * handlers see every change even across a relist. Time is injected (Clock).
 */
import type { Clock } from "../time.js";
import { KubeApiError } from "./errors.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface ListResult<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

/** How an informer reaches the API server (implemented over client-node or in memory). */
export interface ListWatchSource<T> {
  list(): Promise<ListResult<T>>;
  /**
   * Starts a watch from resourceVersion. `onEvent` gets each event; `onDone` is
   * called exactly once when the stream ends (err undefined for a clean close).
   * Returns a function that aborts the watch.
   */
  watch(
    resourceVersion: string,
    timeoutSeconds: number,
    onEvent: (type: WatchEventType, obj: T) => void,
    onDone: (err?: unknown) => void,
  ): Promise<() => void>;
}

export type InformerEvent = "add" | "update" | "delete";
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  readonly timers: Clock;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly relistEveryMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly onError?: (err: unknown) => void;
}

export interface InformerStats {
  lists: number;
  watches: number;
  errors: number;
  relistsAfterGone: number;
}

/** What the informer reads of an object: any kind (a custom resource, a Secret) has it. */
export interface Listed {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly resourceVersion: string;
  };
}

const keyOf = (o: Listed) => `${o.metadata.namespace}/${o.metadata.name}`;

export class Informer<T extends Listed> {
  readonly stats: InformerStats = { lists: 0, watches: 0, errors: 0, relistsAfterGone: 0 };
  readonly #source: ListWatchSource<T>;
  readonly #timers: Clock;
  readonly #initialBackoff: number;
  readonly #maxBackoff: number;
  readonly #relistEvery: number;
  readonly #watchTimeout: number;
  readonly #onError: (err: unknown) => void;
  readonly #handlers: InformerHandler<T>[] = [];
  #cache = new Map<string, T>();
  #resourceVersion = "";
  #failures = 0;
  #stopped = true;
  #abortWatch: (() => void) | undefined;
  #wake: (() => void) | undefined;
  #cancelTimer: (() => void) | undefined;
  #cancelRelist: (() => void) | undefined;
  #synced: Promise<void>;
  #markSynced!: () => void;
  #loop: Promise<void> | undefined;

  constructor(source: ListWatchSource<T>, options: InformerOptions) {
    this.#source = source;
    this.#timers = options.timers;
    this.#initialBackoff = options.initialBackoffMs ?? 1000;
    this.#maxBackoff = options.maxBackoffMs ?? 30_000;
    this.#relistEvery = options.relistEveryMs ?? 10 * 60_000;
    this.#watchTimeout = options.watchTimeoutSeconds ?? 300;
    this.#onError = options.onError ?? (() => {});
    this.#synced = new Promise((resolve) => (this.#markSynced = resolve));
  }

  on(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /** Starts the loop; resolves once the first list has filled the cache. */
  async start(): Promise<void> {
    if (this.#stopped) {
      this.#stopped = false;
      this.#loop = this.#run();
      this.#scheduleRelist();
    }
    await this.#synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelRelist?.();
    this.#cancelTimer?.();
    this.#abortWatch?.();
    this.#wake?.();
    await this.#loop;
  }

  #scheduleRelist(): void {
    this.#cancelRelist = this.#timers.setTimer(this.#relistEvery, () => {
      if (this.#stopped) return;
      this.#resourceVersion = "";
      this.#abortWatch?.();
      this.#scheduleRelist();
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#resourceVersion === "") {
        try {
          this.stats.lists++;
          const list = await this.#source.list();
          if (this.#stopped) return;
          this.#replace(list.items);
          this.#resourceVersion = list.resourceVersion;
          this.#markSynced();
        } catch (err) {
          this.stats.errors++;
          this.#onError(err);
          await this.#backoff();
          continue;
        }
      }
      const outcome = await this.#watchOnce();
      if (this.#stopped) return;
      if (outcome.gone) {
        this.stats.relistsAfterGone++;
        this.#resourceVersion = "";
      }
      if (outcome.events > 0) this.#failures = 0;
      else await this.#backoff();
      if (outcome.error !== undefined && !outcome.gone) {
        this.stats.errors++;
        this.#onError(outcome.error);
      }
    }
  }

  #watchOnce(): Promise<{ events: number; gone: boolean; error?: unknown }> {
    return new Promise((resolve) => {
      let events = 0;
      let gone = false;
      let settled = false;
      let abortStream: (() => void) | undefined;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        cancelWatchdog();
        this.#abortWatch = undefined;
        abortStream?.();
        if (isGone(error)) gone = true;
        resolve(error === undefined || gone ? { events, gone } : { events, gone, error });
      };
      // Armed before the request is even answered: a connection that hangs anywhere is cut.
      this.#abortWatch = () => finish();
      const cancelWatchdog = this.#timers.setTimer((this.#watchTimeout + 30) * 1000, () =>
        finish(),
      );
      this.stats.watches++;
      this.#source
        .watch(
          this.#resourceVersion,
          this.#watchTimeout,
          (type, obj) => {
            if (settled) return;
            if (type === "ERROR") {
              if (isGoneStatus(obj)) gone = true;
              return;
            }
            if (type !== "BOOKMARK") {
              events++;
              this.#apply(type, obj);
            }
            const rv = obj?.metadata?.resourceVersion;
            if (rv) this.#resourceVersion = rv;
          },
          finish,
        )
        .then(
          (abort) => {
            if (settled) abort();
            else abortStream = abort;
          },
          (err: unknown) => finish(err ?? new Error("watch failed")),
        );
    });
  }

  async #backoff(): Promise<void> {
    this.#failures++;
    const delay = Math.min(this.#maxBackoff, this.#initialBackoff * 2 ** (this.#failures - 1));
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#cancelTimer = this.#timers.setTimer(delay, resolve);
    });
    this.#wake = undefined;
    this.#cancelTimer = undefined;
  }

  #replace(items: readonly T[]): void {
    const next = new Map<string, T>();
    for (const item of items) next.set(keyOf(item), item);
    const previous = this.#cache;
    this.#cache = next;
    for (const [key, obj] of previous) if (!next.has(key)) this.#emit("delete", obj);
    for (const [key, obj] of next) {
      const old = previous.get(key);
      if (!old) this.#emit("add", obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
        this.#emit("update", obj, old);
    }
  }

  #apply(type: "ADDED" | "MODIFIED" | "DELETED", obj: T): void {
    const key = keyOf(obj);
    const old = this.#cache.get(key);
    if (type === "DELETED") {
      this.#cache.delete(key);
      this.#emit("delete", obj);
    } else {
      this.#cache.set(key, obj);
      if (old) this.#emit("update", obj, old);
      else this.#emit("add", obj);
    }
  }

  #emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.#handlers) {
      try {
        h(event, obj, old);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}

function isGone(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.status === 410;
  const e = err as { statusCode?: number; code?: number } | undefined;
  return e?.statusCode === 410 || e?.code === 410;
}

function isGoneStatus(obj: unknown): boolean {
  return (obj as { code?: number } | undefined)?.code === 410;
}
