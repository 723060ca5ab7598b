import { randomFillSync } from "node:crypto";

/** A source of cryptographically secure random bytes; passed in so tests can pin it. */
export type RandomSource = (size: number) => Buffer;

/**
 * Serves small random values (IVs, data keys) from a pool refilled by the CSPRNG
 * in large blocks: one system call per 64 KiB instead of one per request. Each
 * returned buffer is a copy, so no two callers ever share bytes.
 */
export function pooledRandom(poolSize = 64 * 1024): RandomSource {
  const pool = Buffer.allocUnsafeSlow(poolSize);
  let offset = poolSize;
  return (size) => {
    if (size > poolSize / 4) return randomFillSync(Buffer.allocUnsafe(size));
    if (offset + size > poolSize) {
      randomFillSync(pool);
      offset = 0;
    }
    const out = Buffer.from(pool.subarray(offset, offset + size));
    pool.fill(0, offset, offset + size);
    offset += size;
    return out;
  };
}
