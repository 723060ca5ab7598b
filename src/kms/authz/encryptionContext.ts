/**
 * The one view of a request's encryption context that every authorization decision
 * reads: grant constraints (grants.ts) and the kms:EncryptionContext:<key> condition
 * keys of key and caller policies (requestContext.ts), so the two cannot disagree.
 *
 * AWS's case rules:
 * - Decrypt needs the exact, case-sensitive context (that is the AAD: crypto/encryptionContext.ts).
 * - Grant constraints: "the key in each key-value pair is not case sensitive, but the value
 *   is case sensitive" (KMS API Reference, GrantConstraints).
 * - Policies: "Context key names are not case-sensitive" (IAM User Guide, Condition element),
 *   the key part of kms:EncryptionContext:<key> included; values compare as the operator says.
 * AWS does not say which pair counts when two keys differ only in case; it only warns "do not
 * use multiple encryption context pairs that differ only by case" (GrantConstraints). Keyhaven
 * fails closed: such a key is ambiguous. No grant constraint naming it is satisfied (nor any
 * EncryptionContextEquals), no Allow statement reading it applies, and every Deny statement
 * reading it applies (evaluate.ts).
 */
export type EncryptionContextMap = Readonly<Record<string, string>>;

export interface CanonicalContext {
  /** Lower-cased key → value, for the keys spelled one way only. */
  readonly pairs: ReadonlyMap<string, string>;
  /** Lower-cased keys the context spells more than one way. */
  readonly ambiguous: ReadonlySet<string>;
  /** The keys as sent (kms:EncryptionContextKeys compares them case-sensitively). */
  readonly keys: readonly string[];
}

const EMPTY: CanonicalContext = Object.freeze({
  pairs: new Map<string, string>(),
  ambiguous: new Set<string>(),
  keys: [],
});

// The same context object (one per request) always yields the same view.
const views = new WeakMap<EncryptionContextMap, CanonicalContext>();

/** The canonical view of `context` (undefined = no context: empty). */
export function canonicalContext(context: EncryptionContextMap | undefined): CanonicalContext {
  if (context === undefined) return EMPTY;
  const known = views.get(context);
  if (known) return known;
  const pairs = new Map<string, string>();
  const ambiguous = new Set<string>();
  // Object.keys sees a "__proto__" key too: the model decoder defines it as an own property.
  const keys = Object.keys(context);
  for (const key of keys) {
    const lower = key.toLowerCase();
    if (ambiguous.has(lower)) continue;
    if (pairs.has(lower)) {
      pairs.delete(lower);
      ambiguous.add(lower);
    } else pairs.set(lower, context[key]!);
  }
  const view = Object.freeze({ pairs, ambiguous, keys });
  views.set(context, view);
  return view;
}

/** Every pair of `required` is in `context`: keys case-insensitively, values exactly. */
export function includesPairs(context: CanonicalContext, required: CanonicalContext): boolean {
  if (required.ambiguous.size > 0) return false;
  for (const [k, v] of required.pairs) if (context.pairs.get(k) !== v) return false;
  return true;
}

/** The same pairs, keys case-insensitively, values exactly; an ambiguous key never matches. */
export function samePairs(a: CanonicalContext, b: CanonicalContext): boolean {
  return (
    a.ambiguous.size === 0 &&
    b.ambiguous.size === 0 &&
    a.pairs.size === b.pairs.size &&
    includesPairs(a, b)
  );
}
