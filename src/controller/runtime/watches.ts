/**
 * What wakes a reconciler besides changes to its own objects, declared by the
 * reconciler (controller-runtime's Watches + EnqueueRequestsFromMapFunc over a field
 * index): its objects refer to objects of another kind, an index from the referred-to
 * object to the objects referring to it is kept current from the informer's
 * add/update/delete, and a change of a referred-to object wakes exactly the objects
 * the index lists: O(1) per event, however many objects there are.
 */
import type { KindName, ObjectsByKind } from "../../api/v1alpha1/types.js";

export interface Watch<K extends KindName, S extends KindName = KindName> {
  /** The kind whose changes wake objects of kind K. */
  readonly source: S;
  /** The source object an object of kind K refers to, as namespace/name (the index key). */
  readonly indexBy: (obj: ObjectsByKind[K]) => string | undefined;
  /** Whether an update of a source object is one its dependents wait on (add and delete always are). */
  readonly changed: (obj: ObjectsByKind[S], old: ObjectsByKind[S]) => boolean;
}

/** A watch of kind K on any source kind. */
export type AnyWatch<K extends KindName> = { [S in KindName]: Watch<K, S> }[KindName];

/** Object keys (namespace/name) by the reference they hold; each object holds at most one. */
export class RefIndex {
  readonly #byRef = new Map<string, Set<string>>();
  readonly #refOf = new Map<string, string>();

  /** Records that `key` now refers to `ref` (undefined: to nothing), replacing what it referred to. */
  set(key: string, ref: string | undefined): void {
    const previous = this.#refOf.get(key);
    if (previous === ref) return;
    if (previous !== undefined) this.#remove(key, previous);
    if (ref === undefined) return;
    this.#refOf.set(key, ref);
    let keys = this.#byRef.get(ref);
    if (!keys) this.#byRef.set(ref, (keys = new Set()));
    keys.add(key);
  }

  delete(key: string): void {
    const previous = this.#refOf.get(key);
    if (previous !== undefined) this.#remove(key, previous);
  }

  /** The keys of the objects that refer to `ref`. */
  get(ref: string): ReadonlySet<string> {
    return this.#byRef.get(ref) ?? EMPTY;
  }

  /** How many objects refer to something. */
  get size(): number {
    return this.#refOf.size;
  }

  #remove(key: string, ref: string): void {
    this.#refOf.delete(key);
    const keys = this.#byRef.get(ref);
    keys?.delete(key);
    if (keys?.size === 0) this.#byRef.delete(ref);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
