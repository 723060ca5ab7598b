/**
 * An API server in memory, with the semantics a controller depends on:
 * resourceVersion on every write (one counter, like etcd's revision); generation
 * bumped only by spec changes; 409 on a stale resourceVersion; the status
 * subresource (the main endpoint ignores status, /status ignores the rest);
 * finalizers and deletionTimestamp (delete with finalizers only marks the object;
 * removing the last finalizer deletes it); watch from a resourceVersion with a
 * bounded history (older → 410 Gone); structural-schema pruning, defaulting and
 * validation (CEL included) from the CRDs; JSON merge and JSON patch. It is the API
 * server of `keyhaven serve --seed`; tests extend it with request counting and error
 * injection (test/support/kube/memoryApiServer.ts).
 */
import { randomUUID } from "node:crypto";
import jsonPatch from "fast-json-patch";
import { applyDefaults, prune, validate } from "../../api/v1alpha1/openapi.js";
import { objectSchema, type Schema } from "../../api/v1alpha1/schemas.js";
import { KINDS, type KindName } from "../../api/v1alpha1/types.js";
import { systemClock, type Clock } from "../../time.js";
import { KubeApiError } from "../errors.js";

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly schema?: Schema;
  readonly statusSubresource: boolean;
  /**
   * Fields (paths of names) holding a metav1.MicroTime: the real API server decodes
   * them with Go's RFC3339Micro layout, so anything but exactly six fractional digits
   * (a JavaScript Date's milliseconds, say) is a 400 before any other check.
   */
  readonly microTimes?: readonly (readonly string[])[];
}

/** Go's `2006-01-02T15:04:05.000000Z07:00`, as metav1.MicroTime parses it. */
const RFC3339_MICRO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

/** Resource types of the keyhaven API plus the core ones the controller writes. */
export function defaultResourceTypes(
  schemas: Partial<Record<KindName, Schema>> = {},
): ResourceType[] {
  const custom = (Object.keys(KINDS) as KindName[]).map((kind) => ({
    group: "keyhaven.dev",
    version: "v1alpha1",
    plural: KINDS[kind].plural,
    kind,
    schema: schemas[kind] ?? objectSchema(kind),
    statusSubresource: true,
  }));
  return [
    ...custom,
    {
      group: "coordination.k8s.io",
      version: "v1",
      plural: "leases",
      kind: "Lease",
      statusSubresource: false,
      microTimes: [
        ["spec", "acquireTime"],
        ["spec", "renewTime"],
      ],
    },
    { group: "", version: "v1", plural: "events", kind: "Event", statusSubresource: false },
  ];
}

export type StoredObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
};

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: StoredObject;
  readonly revision: number;
}

export interface RequestInfo {
  readonly verb: Verb;
  readonly plural: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
}

type Listener = { plural: string; namespace?: string; fn: (e: WatchEvent) => void };

const clone = <T>(v: T): T => structuredClone(v);
const keyOf = (plural: string, ns: string, name: string) => `${plural}/${ns}/${name}`;

export class EmbeddedApiServer {
  readonly #types = new Map<string, ResourceType>();
  readonly #objects = new Map<string, StoredObject>();
  readonly #history: WatchEvent[] = [];
  readonly #listeners = new Set<Listener>();
  readonly #clock: Clock;
  readonly #historyLimit: number;
  #revision = 0;
  /** History before this revision is gone (compacted): watching from older → 410. */
  #compactedTo = 0;

  readonly #uid: (plural: string, namespace: string, name: string) => string;

  constructor(
    options: {
      clock?: Clock;
      types?: ResourceType[];
      historyLimit?: number;
      /** How objects get their UID (random by default; `serve --seed` derives it from the name). */
      uid?: (plural: string, namespace: string, name: string) => string;
    } = {},
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#uid = options.uid ?? (() => randomUUID());
    this.#historyLimit = options.historyLimit ?? 10_000;
    for (const t of options.types ?? defaultResourceTypes()) this.#types.set(t.plural, t);
  }

  type(plural: string): ResourceType {
    const t = this.#types.get(plural);
    if (!t)
      throw new KubeApiError(
        404,
        "NotFound",
        `the server could not find the requested resource (${plural})`,
      );
    return t;
  }

  get revision(): number {
    return this.#revision;
  }

  /** Forgets the watch history, so watches from any earlier resourceVersion get 410 Gone. */
  compact(): void {
    this.#compactedTo = this.#revision + 1;
    this.#history.length = 0;
  }

  #enter(request: RequestInfo): void {
    this.received(request);
    this.type(request.plural);
  }

  /** Called first for every request; a subclass may throw to fail it (tests inject errors). */
  protected received(_request: RequestInfo): void {}

  get(plural: string, namespace: string, name: string): StoredObject {
    this.#enter({ verb: "get", plural, namespace, name });
    const obj = this.#objects.get(keyOf(plural, namespace, name));
    if (!obj) throw this.#notFound(plural, name);
    return clone(obj);
  }

  list(plural: string, namespace?: string): { items: StoredObject[]; resourceVersion: string } {
    this.#enter({ verb: "list", plural, ...(namespace !== undefined && { namespace }) });
    const items: StoredObject[] = [];
    for (const [k, obj] of this.#objects)
      if (
        k.startsWith(`${plural}/`) &&
        (namespace === undefined || obj.metadata.namespace === namespace)
      )
        items.push(clone(obj));
    items.sort((a, b) =>
      `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace}/${b.metadata.name}`,
      ),
    );
    return { items, resourceVersion: String(this.#revision) };
  }

  create(plural: string, namespace: string, body: Record<string, unknown>): StoredObject {
    const meta = (body["metadata"] ?? {}) as Record<string, unknown>;
    const given = typeof meta["name"] === "string" ? meta["name"] : "";
    const prefix = typeof meta["generateName"] === "string" ? meta["generateName"] : "";
    const name = given || (prefix ? `${prefix}${randomUUID().slice(0, 5)}` : "");
    this.#enter({ verb: "create", plural, namespace, name });
    const type = this.type(plural);
    if (!name)
      throw new KubeApiError(
        422,
        "Invalid",
        `${type.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
      );
    const key = keyOf(plural, namespace, name);
    if (this.#objects.has(key))
      throw new KubeApiError(
        409,
        "AlreadyExists",
        `${this.#resourceName(type)} "${name}" already exists`,
      );
    this.#decode(type, body);
    let obj = clone(body) as StoredObject;
    if (type.statusSubresource) delete obj["status"];
    obj = this.#admit(type, obj, undefined, name);
    obj.apiVersion = type.group ? `${type.group}/${type.version}` : type.version;
    obj.kind = type.kind;
    const finalizers = Array.isArray(meta["finalizers"])
      ? (meta["finalizers"] as string[])
      : undefined;
    obj.metadata = {
      ...(meta as object),
      name,
      namespace,
      uid: this.#uid(plural, namespace, name),
      resourceVersion: "",
      generation: 1,
      creationTimestamp: this.#now(),
      ...(finalizers && { finalizers }),
    };
    delete obj.metadata["deletionTimestamp"];
    delete obj.metadata["generateName"];
    return this.#write(plural, key, obj, "ADDED");
  }

  /** PUT: replaces the object (or, with subresource "status", only its status). */
  replace(
    plural: string,
    namespace: string,
    name: string,
    body: Record<string, unknown>,
    subresource?: "status",
  ): StoredObject {
    this.#enter({ verb: "update", plural, namespace, name, ...(subresource && { subresource }) });
    const current = this.#current(plural, namespace, name);
    const rv = (body["metadata"] as { resourceVersion?: string } | undefined)?.resourceVersion;
    if (rv !== undefined && rv !== "" && rv !== current.metadata.resourceVersion)
      throw this.#conflict(plural, name);
    return this.#update(plural, current, clone(body) as StoredObject, subresource);
  }

  /** PATCH with a JSON merge patch (RFC 7386) or a JSON patch (RFC 6902). */
  patch(
    plural: string,
    namespace: string,
    name: string,
    type: "merge" | "json",
    patch: unknown,
    subresource?: "status",
  ): StoredObject {
    this.#enter({ verb: "patch", plural, namespace, name, ...(subresource && { subresource }) });
    const current = this.#current(plural, namespace, name);
    let next: StoredObject;
    if (type === "merge") {
      if (typeof patch !== "object" || patch === null || Array.isArray(patch))
        throw new KubeApiError(400, "BadRequest", "a merge patch must be a JSON object");
      const rv = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      if (rv !== undefined && rv !== current.metadata.resourceVersion)
        throw this.#conflict(plural, name);
      next = mergePatch(clone(current), patch) as StoredObject;
    } else {
      if (!Array.isArray(patch))
        throw new KubeApiError(400, "BadRequest", "a JSON patch must be an array of operations");
      try {
        next = jsonPatch.applyPatch(
          clone(current),
          patch as jsonPatch.Operation[],
          true,
          false,
        ).newDocument;
      } catch (err) {
        const failedTest = (err as { name?: string }).name === "TEST_OPERATION_FAILED";
        if (
          failedTest &&
          (patch as { path?: string }[]).some((op) => op.path === "/metadata/resourceVersion")
        )
          throw this.#conflict(plural, name);
        throw new KubeApiError(
          422,
          "Invalid",
          `the server rejected our request due to an error in our request: ${(err as Error).message.split("\n")[0]}`,
        );
      }
    }
    return this.#update(plural, current, next, subresource);
  }

  delete(plural: string, namespace: string, name: string): StoredObject {
    this.#enter({ verb: "delete", plural, namespace, name });
    const current = this.#current(plural, namespace, name);
    const key = keyOf(plural, namespace, name);
    if ((current.metadata.finalizers ?? []).length === 0) return this.#remove(plural, key, current);
    if (current.metadata.deletionTimestamp) return clone(current);
    const next = clone(current);
    next.metadata.deletionTimestamp = this.#now();
    next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    return this.#write(plural, key, next, "MODIFIED");
  }

  /**
   * Subscribes to changes of one resource after resourceVersion ("": from now).
   * Throws 410 Gone if that version's history was compacted away.
   */
  watch(
    plural: string,
    resourceVersion: string,
    onEvent: (e: WatchEvent) => void,
    namespace?: string,
  ): () => void {
    this.#enter({ verb: "watch", plural, ...(namespace !== undefined && { namespace }) });
    const from = resourceVersion === "" ? this.#revision : Number(resourceVersion);
    if (!Number.isFinite(from))
      throw new KubeApiError(400, "BadRequest", `invalid resourceVersion ${resourceVersion}`);
    if (from + 1 < this.#compactedTo || from < this.#revision - this.#historyLimit)
      throw new KubeApiError(
        410,
        "Expired",
        `too old resource version: ${from} (${this.#compactedTo})`,
      );
    const listener: Listener = {
      plural,
      fn: onEvent,
      ...(namespace !== undefined && { namespace }),
    };
    for (const e of this.#history)
      if (e.revision > from && this.#matches(listener, e)) onEvent(clone(e));
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #matches(l: Listener, e: WatchEvent): boolean {
    return (
      l.plural === this.#pluralOf(e.object) &&
      (l.namespace === undefined || l.namespace === e.object.metadata.namespace)
    );
  }

  #pluralOf(obj: StoredObject): string {
    for (const t of this.#types.values()) if (t.kind === obj.kind) return t.plural;
    return "";
  }

  #current(plural: string, namespace: string, name: string): StoredObject {
    const current = this.#objects.get(keyOf(plural, namespace, name));
    if (!current) throw this.#notFound(plural, name);
    return current;
  }

  #update(
    plural: string,
    current: StoredObject,
    next: StoredObject,
    subresource?: "status",
  ): StoredObject {
    const type = this.type(plural);
    this.#decode(type, next);
    const name = current.metadata.name;
    let merged: StoredObject;
    if (type.statusSubresource && subresource === "status") {
      merged = { ...clone(current), status: next["status"] };
    } else {
      merged = { ...next, metadata: { ...clone(current.metadata) } };
      if (type.statusSubresource) {
        if (current["status"] === undefined) delete merged["status"];
        else merged["status"] = clone(current["status"]);
      }
      const nm = next.metadata ?? {};
      for (const f of ["labels", "annotations", "finalizers"] as const) {
        if (nm[f] === undefined || nm[f] === null) delete merged.metadata[f];
        else (merged.metadata as Record<string, unknown>)[f] = nm[f];
      }
      const oldFinalizers = current.metadata.finalizers ?? [];
      const newFinalizers = merged.metadata.finalizers ?? [];
      if (
        current.metadata.deletionTimestamp &&
        newFinalizers.some((f) => !oldFinalizers.includes(f))
      )
        throw new KubeApiError(
          422,
          "Invalid",
          `${this.#resourceName(type)} "${name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted`,
        );
    }
    merged.apiVersion = current.apiVersion;
    merged.kind = current.kind;
    merged = sortedLike(type, this.#admit(type, merged, current, name, subresource));
    if (JSON.stringify(spec(merged)) !== JSON.stringify(spec(current)))
      merged.metadata.generation = (current.metadata.generation ?? 1) + 1;
    const key = keyOf(plural, current.metadata.namespace, name);
    if (JSON.stringify(merged) === JSON.stringify(current)) return clone(current);
    if (merged.metadata.deletionTimestamp && (merged.metadata.finalizers ?? []).length === 0)
      return this.#remove(plural, key, merged);
    return this.#write(plural, key, merged, "MODIFIED");
  }

  /** What the real API server refuses while decoding the body, before admission (400). */
  #decode(type: ResourceType, body: Record<string, unknown>): void {
    for (const path of type.microTimes ?? []) {
      let v: unknown = body;
      for (const p of path)
        v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[p] : undefined;
      if (v === undefined || v === null) continue;
      if (typeof v !== "string" || !RFC3339_MICRO.test(v))
        throw new KubeApiError(
          400,
          "BadRequest",
          `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse as RFC3339Micro`,
        );
    }
  }

  /** Pruning, defaulting and validation against the kind's schema. */
  #admit(
    type: ResourceType,
    obj: StoredObject,
    old: StoredObject | undefined,
    name: string,
    subresource?: "status",
  ): StoredObject {
    if (!type.schema) return obj;
    const { metadata, ...rest } = obj;
    const pruned = applyDefaults(type.schema, prune(type.schema, rest)) as Record<string, unknown>;
    const oldRest: Record<string, unknown> | undefined = old
      ? { ...old, metadata: undefined }
      : undefined;
    const statusSchema = type.schema.properties?.["status"];
    const errors =
      subresource === "status"
        ? statusSchema
          ? validate(statusSchema, pruned["status"], oldRest?.["status"], "status")
          : []
        : validate(type.schema, pruned, oldRest);
    if (errors.length > 0)
      throw new KubeApiError(
        422,
        "Invalid",
        `${this.#resourceName(type)} "${name}" is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join(", ")}`,
      );
    return { ...pruned, metadata } as StoredObject;
  }

  #write(plural: string, key: string, given: StoredObject, type: WatchEvent["type"]): StoredObject {
    this.#revision++;
    given.metadata.resourceVersion = String(this.#revision);
    const obj = sortedLike(this.type(plural), given);
    this.#objects.set(key, obj);
    this.#publish(plural, { type, object: clone(obj), revision: this.#revision });
    return clone(obj);
  }

  #remove(plural: string, key: string, obj: StoredObject): StoredObject {
    this.#revision++;
    const gone = clone(obj);
    gone.metadata.resourceVersion = String(this.#revision);
    this.#objects.delete(key);
    this.#publish(plural, { type: "DELETED", object: clone(gone), revision: this.#revision });
    return gone;
  }

  #publish(plural: string, e: WatchEvent): void {
    this.#history.push(e);
    if (this.#history.length > this.#historyLimit) {
      this.#history.shift();
      this.#compactedTo = this.#history[0]!.revision;
    }
    for (const l of [...this.#listeners])
      if (l.plural === plural && this.#matches(l, e)) l.fn(clone(e));
  }

  #now(): string {
    return this.#clock
      .now()
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
  }

  #resourceName(type: ResourceType): string {
    return type.group ? `${type.plural}.${type.group}` : type.plural;
  }

  #notFound(plural: string, name: string): KubeApiError {
    const type = this.type(plural);
    return new KubeApiError(404, "NotFound", `${this.#resourceName(type)} "${name}" not found`);
  }

  #conflict(plural: string, name: string): KubeApiError {
    const type = this.type(plural);
    return new KubeApiError(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${this.#resourceName(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    );
  }
}

/**
 * Custom resources are Go maps in the real API server: every read returns their members
 * in sorted order, whatever order they were written in (a client comparing JSON text
 * must not care). Built-in kinds keep their order here.
 */
function sortedLike(type: ResourceType, obj: StoredObject): StoredObject {
  return type.schema ? (sortKeys(obj) as StoredObject) : obj;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort())
    Object.defineProperty(out, k, {
      value: sortKeys((v as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** Everything but metadata and status: what bumps generation. */
function spec(obj: StoredObject): unknown {
  const rest: Record<string, unknown> = { ...obj };
  for (const k of ["metadata", "status", "apiVersion", "kind"]) delete rest[k];
  return rest;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    // defineProperty, so a member named "__proto__" stays a member, not a prototype.
    else
      Object.defineProperty(out, k, {
        value: mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}
