/**
 * Shared pieces of the policy compiler: its error type and IAM's `*`/`?` wildcards.
 *
 * Wildcards are matched without regular expressions: a backtracking regex built from
 * `arn:*?*?*?*?*?*?*?X` or `tenants/*\/files/*` takes exponential or quadratic time on
 * a crafted value (issue 12, item 2). A pattern is split at its `*`s into segments
 * (literal text where `?` is any one character); the first segment must match at the
 * start, the last at the end, and each one between at its leftmost place after the
 * previous one. Leftmost placement is always safe (a later `*` can absorb whatever an
 * earlier placement skipped), so there is no backtracking: the cost is at most
 * O(value length × pattern length), and linear for segments without `?` in practice
 * (String.indexOf).
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

/** The leftmost place at or after `from` where `segment` matches, or -1. */
function find(segment: Segment, value: string, from: number): number {
  if (!segment.anyChar) return value.indexOf(segment.text, from);
  const last = value.length - segment.text.length;
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
