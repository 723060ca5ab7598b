import { describe, expect, it } from "vitest";
import type { KmsSecret } from "../../api/v1alpha1/types.js";
import { decideSecret, desiredSecret, entryFailure, ownedBy } from "./decide.js";

const obj: KmsSecret = {
  apiVersion: "keyhaven.dev/v1alpha1",
  kind: "KmsSecret",
  metadata: { name: "db", namespace: "ns", uid: "u-1", resourceVersion: "1", generation: 1 },
  spec: {
    keyId: "alias/k",
    encryptedData: { password: "AAAA" },
    template: { type: "kubernetes.io/basic-auth", metadata: { labels: { app: "x" } } },
  },
};
const desired = desiredSecret(obj, new Map([["password", Buffer.from("pw")]]));

describe("KmsSecret decisions", () => {
  it("the Secret: same name, template type and labels, base64 data, controller owner reference", () => {
    expect(desired).toEqual({
      metadata: {
        name: "db",
        namespace: "ns",
        labels: { app: "x" },
        annotations: {},
        ownerReferences: [
          {
            apiVersion: "keyhaven.dev/v1alpha1",
            kind: "KmsSecret",
            name: "db",
            uid: "u-1",
            controller: true,
          },
        ],
      },
      type: "kubernetes.io/basic-auth",
      data: { password: Buffer.from("pw").toString("base64") },
    });
    expect(ownedBy(desired, obj)).toBe(true);
    expect(ownedBy(desired, { ...obj, metadata: { ...obj.metadata, uid: "u-2" } })).toBe(false);
  });

  it.each([
    ["absent", undefined, "create"],
    ["identical", desired, "none"],
    ["other data", { ...desired, data: { password: "eA==" } }, "update"],
    ["other labels", { ...desired, metadata: { ...desired.metadata, labels: {} } }, "update"],
    ["other type (immutable)", { ...desired, type: "Opaque" }, "recreate"],
  ] as const)("%s → %s", (_what, current, action) => {
    expect(decideSecret(current, desired)).toBe(action);
  });

  it.each([
    ["NotFoundException", "KeyNotFound"],
    ["AccessDeniedException", "AccessDenied"],
    ["DisabledException", "KeyUnavailable"],
    ["InvalidCiphertextException", "DecryptFailed"],
    ["IncorrectKeyException", "DecryptFailed"],
    ["SealedValueError", "DecryptFailed"],
  ])("%s → %s, naming the entry", (name, reason) => {
    const failure = entryFailure("password", "alias/k", "strict", { name, message: "m" });
    expect(failure?.reason).toBe(reason);
    expect(failure?.message).toMatch(/entry password/i);
  });

  it("anything else is not a condition but a retry", () => {
    expect(entryFailure("e", "k", "strict", { name: "KMSInternalException", message: "" })).toBe(
      undefined,
    );
    expect(entryFailure("e", "k", "strict", { message: "ECONNREFUSED" })).toBe(undefined);
  });
});
