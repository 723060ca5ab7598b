/**
 * AES-GCM (NIST SP 800-38D, 96-bit IV, 128-bit tag) around a block cipher that stays
 * elsewhere: every AES block operation is one batch of the `encryptBlocks` oracle (an
 * HSM's CKM_AES_ECB under a key that never leaves it); counter XOR and GHASH run here.
 *
 * Why: p11-kit 0.24's RPC (the `p11-kit server` sidecar) carries only mechanisms without
 * parameters, so CKM_AES_GCM and CKM_AES_KEY_WRAP_PAD do not cross the socket, while
 * CKM_AES_ECB does. The output is byte-for-byte standard AES-GCM, so a token reached
 * directly (native CKM_AES_GCM) opens what this seals and the other way round.
 *
 * One oracle call per seal/open: [E(0¹²⁸) = H, E(J0), E(inc32(J0)), …, E(inc32ⁿ(J0))].
 */
import { timingSafeEqual } from "node:crypto";

/** Encrypts whole 16-byte blocks independently (ECB) under the hidden key. */
export type BlockEncryptor = (blocks: Buffer) => Promise<Buffer>;

export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

const R = 0xe1n << 120n;
const MASK = (1n << 128n) - 1n;

/** Multiplication in GF(2¹²⁸) with GCM's bit order (SP 800-38D, algorithm 1). */
function gfMultiply(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127n; i >= 0n; i--) {
    if ((x >> i) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z & MASK;
}

function blockToBigInt(b: Buffer, offset = 0): bigint {
  return (b.readBigUInt64BE(offset) << 64n) | b.readBigUInt64BE(offset + 8);
}

function ghash(h: bigint, aad: Buffer, ciphertext: Buffer): Buffer {
  let y = 0n;
  const absorb = (data: Buffer) => {
    for (let i = 0; i < data.length; i += 16) {
      const block = Buffer.alloc(16);
      data.copy(block, 0, i, Math.min(i + 16, data.length));
      y = gfMultiply(y ^ blockToBigInt(block), h);
    }
  };
  absorb(aad);
  absorb(ciphertext);
  const lengths = Buffer.alloc(16);
  lengths.writeBigUInt64BE(BigInt(aad.length) * 8n, 0);
  lengths.writeBigUInt64BE(BigInt(ciphertext.length) * 8n, 8);
  y = gfMultiply(y ^ blockToBigInt(lengths), h);
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(y >> 64n, 0);
  out.writeBigUInt64BE(y & 0xffffffffffffffffn, 8);
  return out;
}

/** The oracle's input for `length` bytes of text: 0¹²⁸, J0 and the counter blocks after it. */
function counterBlocks(iv: Buffer, length: number): Buffer {
  const n = Math.ceil(length / 16);
  const blocks = Buffer.alloc(16 * (n + 2));
  const counter0 = 1;
  for (let i = 0; i <= n; i++) {
    const at = 16 * (i + 1);
    iv.copy(blocks, at);
    blocks.writeUInt32BE((counter0 + i) >>> 0, at + 12);
  }
  return blocks;
}

/** Runs the oracle once; returns H, the tag mask E(J0) and the keystream, then XORs. */
async function keystream(
  encryptBlocks: BlockEncryptor,
  iv: Buffer,
  length: number,
): Promise<{ h: bigint; tagMask: Buffer; stream: Buffer; wipe: () => void }> {
  if (iv.length !== GCM_IV_BYTES) throw new RangeError(`a GCM IV is ${GCM_IV_BYTES} bytes`);
  const input = counterBlocks(iv, length);
  const out = await encryptBlocks(input);
  if (out.length !== input.length)
    throw new RangeError(`the block cipher returned ${out.length} bytes for ${input.length}`);
  return {
    h: blockToBigInt(out, 0),
    tagMask: out.subarray(16, 32),
    stream: out.subarray(32),
    wipe: () => out.fill(0),
  };
}

function xor(data: Buffer, stream: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ stream[i]!;
  return out;
}

/** AES-GCM encryption: ciphertext ‖ tag. */
export async function gcmSeal(
  encryptBlocks: BlockEncryptor,
  iv: Buffer,
  plaintext: Buffer,
  aad: Buffer,
): Promise<Buffer> {
  const k = await keystream(encryptBlocks, iv, plaintext.length);
  try {
    const ciphertext = xor(plaintext, k.stream);
    const tag = xor(ghash(k.h, aad, ciphertext), k.tagMask);
    return Buffer.concat([ciphertext, tag]);
  } finally {
    k.wipe();
  }
}

/** AES-GCM decryption of ciphertext ‖ tag; undefined when it does not authenticate. */
export async function gcmOpen(
  encryptBlocks: BlockEncryptor,
  iv: Buffer,
  sealed: Buffer,
  aad: Buffer,
): Promise<Buffer | undefined> {
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  const ciphertext = sealed.subarray(0, sealed.length - GCM_TAG_BYTES);
  const k = await keystream(encryptBlocks, iv, ciphertext.length);
  try {
    const expected = xor(ghash(k.h, aad, ciphertext), k.tagMask);
    if (!timingSafeEqual(expected, sealed.subarray(ciphertext.length))) return undefined;
    return xor(ciphertext, k.stream);
  } finally {
    k.wipe();
  }
}
