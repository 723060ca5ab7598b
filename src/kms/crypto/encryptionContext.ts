/**
 * Canonical, unambiguous byte encoding of an encryption context, used as AES-GCM
 * additional authenticated data. Pairs are sorted by the UTF-8 bytes of the key,
 * and every key and value is length-prefixed, so {"ab":"c"} and {"a":"bc"} (or any
 * other regrouping of the same characters) never encode alike:
 *
 *   u32be pairCount ‖ for each pair: u32be keyLen ‖ key ‖ u32be valueLen ‖ value
 */
export type EncryptionContext = Readonly<Record<string, string>>;

const EMPTY = Buffer.alloc(4);

export function encodeEncryptionContext(context: EncryptionContext | undefined): Buffer {
  if (!context) return EMPTY;
  const pairs = Object.entries(context).map(
    ([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")] as const,
  );
  if (pairs.length === 0) return EMPTY;
  pairs.sort(([a], [b]) => Buffer.compare(a, b));
  let size = 4;
  for (const [k, v] of pairs) size += 8 + k.length + v.length;
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt32BE(pairs.length, 0);
  for (const [k, v] of pairs) {
    at = out.writeUInt32BE(k.length, at);
    at += k.copy(out, at);
    at = out.writeUInt32BE(v.length, at);
    at += v.copy(out, at);
  }
  return out;
}
