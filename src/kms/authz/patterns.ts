/**
 * Shared pieces of the policy compiler: its error type and IAM's `*`/`?` wildcards.
 *
 * Wildcards are matched without regular expressions: a backtracking regex built from
 * `arn:*?*?*?*?*?*?*?X` or `tenants/*\/files/*` takes exponential or quadratic time on
 * a crafted value (issue 12, item 2). A pattern is split at its `*`s into segments
 * (literal text where `?` is any one character); the first segment must match at the
 * start, the last at the end, and each one between at its leftmost place after the
 * previous one. Leftmost placement is always safe (a later `*` can absorb whatever an
 * earlier placement skipped), so there is no backtracking. Segments without `?` are
 * found with String.indexOf; short ones with `?` place by place (≤ 64 steps a
 * character); long ones with `?` by bit-parallel Shift-And (length/32 word steps a
 * character). Worst case O(value length × pattern length / 32).
 */

/** A policy document that cannot be used; the message says which statement and field to fix. */
export class PolicyError extends Error {
  override name = "PolicyError";
}

/** A compiled wildcard pattern: does a whole value match it. */
export type WildcardMatcher = (value: string) => boolean;

interface Segment {
  readonly text: string;
  /** Whether the segment contains `?` (else String.indexOf/startsWith/endsWith do). */
  readonly anyChar: boolean;
}

/** Whether `segment` matches `value` at `at` (`?` is any one UTF-16 code unit, as IAM's). */
function matchesAt(segment: Segment, value: string, at: number): boolean {
  const s = segment.text;
  if (at + s.length > value.length) return false;
  if (!segment.anyChar) return value.startsWith(s, at);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 63 /* ? */ && c !== value.charCodeAt(at + i)) return false;
  }
  return true;
}

/** Up to this length a `?` segment is tried at each place (≤ 64 steps per character). */
const SHORT_SEGMENT = 64;

/**
 * Shift-And (bit-parallel) search for a long segment with `?`: one pass over the value,
 * ceil(length / 32) word operations per character, whatever the value holds. The masks
 * are built per call (never cached: a policy cannot make them pile up in memory).
 */
function shiftAndFind(text: string, value: string, from: number): number {
  const k = text.length;
  const words = Math.ceil(k / 32);
  const any = new Uint32Array(words);
  for (let j = 0; j < k; j++) if (text.charCodeAt(j) === 63) any[j >>> 5]! |= 1 << (j & 31);
  const masks = new Map<number, Uint32Array>();
  for (let j = 0; j < k; j++) {
    const c = text.charCodeAt(j);
    if (c === 63) continue;
    let mask = masks.get(c);
    if (!mask) masks.set(c, (mask = any.slice()));
    mask[j >>> 5]! |= 1 << (j & 31);
  }
  const state = new Uint32Array(words);
  const top = words - 1;
  const done = 1 << ((k - 1) & 31);
  for (let i = from; i < value.length; i++) {
    const mask = masks.get(value.charCodeAt(i)) ?? any;
    let carry = 1;
    for (let w = 0; w < words; w++) {
      const d = state[w]!;
      state[w] = ((d << 1) | carry) & mask[w]!;
      carry = d >>> 31;
    }
    if ((state[top]! & done) !== 0) return i - k + 1;
  }
  return -1;
}

/** The leftmost place at or after `from` where `segment` matches, or -1. */
function find(segment: Segment, value: string, from: number): number {
  if (!segment.anyChar) return value.indexOf(segment.text, from);
  const last = value.length - segment.text.length;
  if (last < from) return -1;
  if (segment.text.length > SHORT_SEGMENT) return shiftAndFind(segment.text, value, from);
  for (let at = from; at <= last; at++) if (matchesAt(segment, value, at)) return at;
  return -1;
}

/** Compiles `*`/`?` wildcards; `ignoreCase` lower-cases pattern and value (IAM action names). */
export function compileWildcard(pattern: string, ignoreCase = false): WildcardMatcher {
  const source = ignoreCase ? pattern.toLowerCase() : pattern;
  const segments: Segment[] = source
    .split("*")
    .map((text) => ({ text, anyChar: text.includes("?") }));
  const first = segments[0]!;
  if (segments.length === 1) {
    return (raw) => {
      const value = ignoreCase ? raw.toLowerCase() : raw;
      return value.length === first.text.length && matchesAt(first, value, 0);
    };
  }
  const lastSegment = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((s) => s.text.length > 0);
  const minLength = segments.reduce((n, s) => n + s.text.length, 0);
  return (raw) => {
    const value = ignoreCase ? raw.toLowerCase() : raw;
    if (value.length < minLength) return false;
    if (!matchesAt(first, value, 0)) return false;
    const end = value.length - lastSegment.text.length;
    if (!matchesAt(lastSegment, value, end)) return false;
    let at = first.text.length;
    for (const segment of middle) {
      const found = find(segment, value, at);
      if (found < 0 || found + segment.text.length > end) return false;
      at = found + segment.text.length;
    }
    return true;
  };
}

/** One-off match of a wildcard pattern (compiles it; callers that repeat should keep the matcher). */
export const wildcardMatch = (pattern: string, value: string, ignoreCase = false): boolean =>
  compileWildcard(pattern, ignoreCase)(value);
