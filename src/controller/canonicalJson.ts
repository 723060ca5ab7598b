/**
 * JSON text with object members in sorted order (undefined members left out, as
 * JSON.stringify does), for comparing values by content. The API server returns
 * custom resources with sorted keys (they are Go maps), so a plain JSON.stringify of
 * what it sent and of what we built differs in order though not in content.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}
