/** Shared pieces of the policy compiler: its error type and IAM's `*`/`?` wildcards. */

/** A policy document that cannot be used; the message says which statement and field to fix. */
export class PolicyError extends Error {
  override name = "PolicyError";
}

/** `*` and `?` wildcards to an anchored regular expression. */
export function wildcardPattern(pattern: string, flags = ""): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, flags);
}
