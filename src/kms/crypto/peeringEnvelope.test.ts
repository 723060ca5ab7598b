import { createPrivateKey, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  generatePeeringKeyPair,
  openFromPeer,
  PeeringEnvelopeError,
  sealForPeer,
} from "./peeringEnvelope.js";

const receiver = generatePeeringKeyPair();
const privateKey = createPrivateKey({ key: receiver.privateKeyDer, format: "der", type: "pkcs8" });

describe("peering envelope", () => {
  it("opens what was sealed for this key pair, item by item, and never holds the items in the clear", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 2500 }), { minLength: 1, maxLength: 4 }),
        (items) => {
          const labels = items.map((_, i) => `material/mrk-0/${i + 1}`);
          const envelope = sealForPeer(
            receiver.publicKeyDer,
            items.map((bytes, i) => ({ label: labels[i]!, bytes: Buffer.from(bytes) })),
            randomBytes,
          );
          const wire = JSON.stringify(envelope);
          for (const item of items)
            if (item.length >= 8) expect(wire).not.toContain(Buffer.from(item).toString("base64"));
          expect(openFromPeer(privateKey, envelope, labels)).toEqual(
            items.map((b) => Buffer.from(b)),
          );
        },
      ),
      { numRuns: 20 },
    );
  });

  it("refuses another instance's envelope, a relabelled item and a tampered one", () => {
    const material = randomBytes(32);
    const envelope = sealForPeer(
      receiver.publicKeyDer,
      [{ label: "material/k/1", bytes: material }],
      randomBytes,
    );
    const other = generatePeeringKeyPair();
    const otherKey = createPrivateKey({ key: other.privateKeyDer, format: "der", type: "pkcs8" });
    expect(() => openFromPeer(otherKey, envelope, ["material/k/1"])).toThrow(PeeringEnvelopeError);
    expect(() => openFromPeer(privateKey, envelope, ["material/k/2"])).toThrow(
      "a sealed item failed authentication",
    );
    const sealed = Buffer.from(envelope.Items[0]!.Sealed, "base64");
    sealed[0]! ^= 1;
    const tampered = {
      ...envelope,
      Items: [{ ...envelope.Items[0]!, Sealed: sealed.toString("base64") }],
    };
    expect(() => openFromPeer(privateKey, tampered, ["material/k/1"])).toThrow(
      PeeringEnvelopeError,
    );
    expect(() => openFromPeer(privateKey, envelope, [])).toThrow(PeeringEnvelopeError);
  });
});
