import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RefIndex } from "./watches.js";

describe("RefIndex", () => {
  it("lists the objects referring to a key, follows a changed reference, forgets deleted objects", () => {
    const index = new RefIndex();
    index.set("ns/alias", "ns/k1");
    index.set("ns/grant", "ns/k1");
    index.set("ns/other", "ns/k2");
    expect([...index.get("ns/k1")].sort()).toEqual(["ns/alias", "ns/grant"]);

    index.set("ns/alias", "ns/k2");
    expect([...index.get("ns/k1")]).toEqual(["ns/grant"]);
    expect([...index.get("ns/k2")].sort()).toEqual(["ns/alias", "ns/other"]);

    index.set("ns/grant", undefined); // now by key id: refers to no KmsKey
    index.delete("ns/other");
    expect([...index.get("ns/k1")]).toEqual([]);
    expect([...index.get("ns/k2")]).toEqual(["ns/alias"]);
    expect(index.size).toBe(1);
  });

  it("after any sequence of sets and deletes, answers what a scan of the objects answers (property)", () => {
    const name = fc.constantFrom("a", "b", "c", "d");
    const op = fc.oneof(
      fc.record({ op: fc.constant("set" as const), key: name, ref: fc.option(name) }),
      fc.record({ op: fc.constant("delete" as const), key: name }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const index = new RefIndex();
        const objects = new Map<string, string | undefined>();
        for (const o of ops)
          if (o.op === "set") {
            index.set(o.key, o.ref ?? undefined);
            objects.set(o.key, o.ref ?? undefined);
          } else {
            index.delete(o.key);
            objects.delete(o.key);
          }
        for (const ref of ["a", "b", "c", "d"]) {
          const scanned = [...objects].filter(([, r]) => r === ref).map(([k]) => k);
          expect([...index.get(ref)].sort()).toEqual(scanned.sort());
        }
        expect(index.size).toBe([...objects.values()].filter((r) => r !== undefined).length);
      }),
    );
  });
});
