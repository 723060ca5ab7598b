/**
 * Protocol Buffers encoding of the KMS v2 messages (api.proto), by hand: six small
 * messages of strings, bytes and one map<string, bytes> do not need a schema compiler
 * at run time, and the plugin ships no .proto file. Only what proto3 puts on the wire
 * for these fields: a tag varint (field << 3 | wire type), then a varint or a
 * length-delimited value (type 2) for strings, bytes and map entries (a nested message
 * {1: key, 2: value}). Unknown fields are skipped, as proto3 requires; the last value of
 * a repeated scalar field wins. Decoding errors are KmsPluginCodecError.
 */

export class KmsPluginCodecError extends Error {
  override name = "KmsPluginCodecError";
}

export interface EncryptRequest {
  readonly plaintext: Buffer;
  readonly uid: string;
}

export interface DecryptRequest {
  readonly ciphertext: Buffer;
  readonly uid: string;
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Buffer>;
}

export interface StatusResponse {
  readonly version: string;
  readonly healthz: string;
  readonly keyId: string;
}

export interface EncryptResponse {
  readonly ciphertext: Uint8Array;
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Uint8Array>;
}

export interface DecryptResponse {
  readonly plaintext: Uint8Array;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** Calls `field(number, value)` for each length-delimited field; skips the others. */
function readFields(buf: Buffer, field: (number: number, value: Buffer) => void): void {
  let at = 0;
  const varint = (): number => {
    let result = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= buf.length) throw new KmsPluginCodecError("truncated varint");
      const byte = buf[at++]!;
      // Lengths and field numbers here fit in 32 bits; higher bits only matter when skipping.
      if (shift < 32) result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new KmsPluginCodecError("varint longer than 10 bytes");
  };
  while (at < buf.length) {
    const tag = varint();
    const number = Math.floor(tag / 8);
    const type = tag % 8;
    if (number === 0) throw new KmsPluginCodecError("field number 0");
    switch (type) {
      case VARINT:
        varint();
        break;
      case FIXED64:
        at += 8;
        break;
      case FIXED32:
        at += 4;
        break;
      case LENGTH_DELIMITED: {
        const length = varint();
        if (at + length > buf.length) throw new KmsPluginCodecError("truncated field");
        field(number, buf.subarray(at, at + length));
        at += length;
        break;
      }
      default:
        throw new KmsPluginCodecError(`unsupported wire type ${type}`);
    }
    if (at > buf.length) throw new KmsPluginCodecError("truncated field");
  }
}

const text = (value: Buffer): string => value.toString("utf8");

export function decodeEncryptRequest(buf: Buffer): EncryptRequest {
  let plaintext: Buffer = Buffer.alloc(0);
  let uid = "";
  readFields(buf, (number, value) => {
    if (number === 1) plaintext = value;
    else if (number === 2) uid = text(value);
  });
  return { plaintext, uid };
}

export function decodeDecryptRequest(buf: Buffer): DecryptRequest {
  let ciphertext: Buffer = Buffer.alloc(0);
  let uid = "";
  let keyId = "";
  const annotations = new Map<string, Buffer>();
  readFields(buf, (number, value) => {
    if (number === 1) ciphertext = value;
    else if (number === 2) uid = text(value);
    else if (number === 3) keyId = text(value);
    else if (number === 4) {
      let key = "";
      let entry: Buffer = Buffer.alloc(0);
      readFields(value, (n, v) => {
        if (n === 1) key = text(v);
        else if (n === 2) entry = v;
      });
      annotations.set(key, entry);
    }
  });
  return { ciphertext, uid, keyId, annotations };
}

/** Writes fields in order; proto3 leaves empty strings and bytes off the wire. */
class Writer {
  private readonly parts: Buffer[] = [];

  private varint(n: number): void {
    const bytes: number[] = [];
    while (n > 0x7f) {
      bytes.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    bytes.push(n);
    this.parts.push(Buffer.from(bytes));
  }

  bytes(number: number, value: Uint8Array | string): this {
    const buf = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    if (buf.length === 0) return this;
    this.varint(number * 8 + LENGTH_DELIMITED);
    this.varint(buf.length);
    this.parts.push(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    return this;
  }

  map(number: number, entries: ReadonlyMap<string, Uint8Array>): this {
    for (const [key, value] of entries) {
      const entry = new Writer().bytes(1, key).bytes(2, value).finish();
      this.varint(number * 8 + LENGTH_DELIMITED);
      this.varint(entry.length);
      this.parts.push(entry);
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export const encodeStatusResponse = (r: StatusResponse): Buffer =>
  new Writer().bytes(1, r.version).bytes(2, r.healthz).bytes(3, r.keyId).finish();

export const encodeEncryptResponse = (r: EncryptResponse): Buffer =>
  new Writer().bytes(1, r.ciphertext).bytes(2, r.keyId).map(3, r.annotations).finish();

export const encodeDecryptResponse = (r: DecryptResponse): Buffer =>
  new Writer().bytes(1, r.plaintext).finish();
