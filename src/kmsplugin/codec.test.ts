import { fileURLToPath } from "node:url";
import { loadSync } from "@grpc/proto-loader";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeDecryptRequest,
  decodeEncryptRequest,
  encodeDecryptResponse,
  encodeEncryptResponse,
  encodeStatusResponse,
  KmsPluginCodecError,
} from "./codec.js";

// The published schema, compiled by protobufjs: the reference the hand-written codec must match.
const service = loadSync(fileURLToPath(new URL("./api.proto", import.meta.url)), {
  keepCase: true,
  defaults: true,
})["v2.KeyManagementService"] as Record<
  string,
  { requestSerialize(v: object): Buffer; responseDeserialize(b: Buffer): Record<string, unknown> }
>;
const method = (name: string) => service[name]!;

const bytes = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
const annotationMap = fc.dictionary(
  fc.stringMatching(/^[a-z0-9.-]{1,40}$/),
  bytes.filter((b) => b.length > 0),
  { maxKeys: 4 },
);

describe("KMS v2 codec", () => {
  it("decodes EncryptRequest and DecryptRequest as protobufjs encodes them", () => {
    fc.assert(
      fc.property(
        bytes,
        fc.string(),
        fc.string(),
        annotationMap,
        (data, uid, keyId, annotations) => {
          const enc = decodeEncryptRequest(
            method("Encrypt").requestSerialize({ plaintext: data, uid }),
          );
          expect(enc).toEqual({ plaintext: data, uid });
          const dec = decodeDecryptRequest(
            method("Decrypt").requestSerialize({
              ciphertext: data,
              uid,
              key_id: keyId,
              annotations,
            }),
          );
          expect(dec).toEqual({
            ciphertext: data,
            uid,
            keyId,
            annotations: new Map(Object.entries(annotations)),
          });
        },
      ),
    );
  });

  it("encodes responses that protobufjs decodes to the same values", () => {
    fc.assert(
      fc.property(
        bytes,
        fc.string(),
        fc.string(),
        annotationMap,
        (data, text, keyId, annotations) => {
          expect(
            method("Status").responseDeserialize(
              encodeStatusResponse({ version: "v2", healthz: text, keyId }),
            ),
          ).toEqual({ version: "v2", healthz: text, key_id: keyId });
          expect(
            method("Encrypt").responseDeserialize(
              encodeEncryptResponse({
                ciphertext: data,
                keyId,
                annotations: new Map(Object.entries(annotations)),
              }),
            ),
          ).toEqual({ ciphertext: data, key_id: keyId, annotations });
          expect(
            method("Decrypt").responseDeserialize(encodeDecryptResponse({ plaintext: data })),
          ).toEqual({ plaintext: data });
        },
      ),
    );
  });

  it("skips unknown fields of every wire type, and rejects truncated input", () => {
    // field 9 varint 150, field 10 fixed64, field 11 fixed32, then plaintext "hi"
    const withUnknown = Buffer.from([
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x0a, 0x02, 0x68, 0x69,
    ]);
    expect(decodeEncryptRequest(withUnknown).plaintext.toString()).toBe("hi");
    expect(() => decodeEncryptRequest(Buffer.from([0x0a, 0x05, 0x68]))).toThrow(
      KmsPluginCodecError,
    );
    expect(() => decodeEncryptRequest(Buffer.from([0x0a]))).toThrow(KmsPluginCodecError);
    expect(() => decodeEncryptRequest(Buffer.from([0x0b]))).toThrow(KmsPluginCodecError);
  });
});
