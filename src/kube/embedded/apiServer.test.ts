import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EmbeddedApiServer, mergePatch } from "./apiServer.js";

const key = (name: string, spec: object = {}) => ({
  apiVersion: "keyhaven.dev/v1alpha1",
  kind: "KmsKey",
  metadata: { name },
  spec,
});

describe("EmbeddedApiServer", () => {
  it("bumps resourceVersion on every write and generation only on spec changes", () => {
    const api = new EmbeddedApiServer();
    const a = api.create("kmskeys", "ns", key("a"));
    expect(a.metadata.generation).toBe(1);
    const s = api.patch("kmskeys", "ns", "a", "merge", { status: { keyId: "k" } }, "status");
    expect(Number(s.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    expect(s.metadata.generation).toBe(1);
    const f = api.patch("kmskeys", "ns", "a", "merge", { metadata: { finalizers: ["x"] } });
    expect(f.metadata.generation).toBe(1);
    const g = api.patch("kmskeys", "ns", "a", "merge", { spec: { description: "d" } });
    expect(g.metadata.generation).toBe(2);
    // The main endpoint ignores status; /status ignores spec.
    const ignored = api.patch("kmskeys", "ns", "a", "merge", { status: { keyId: "other" } });
    expect((ignored["status"] as { keyId: string }).keyId).toBe("k");
  });

  it("answers 409 to a write at a stale resourceVersion, by merge patch or JSON patch test", () => {
    const api = new EmbeddedApiServer();
    const a = api.create("kmskeys", "ns", key("a"));
    api.patch("kmskeys", "ns", "a", "merge", { spec: { description: "x" } });
    expect(() =>
      api.patch("kmskeys", "ns", "a", "merge", {
        metadata: { resourceVersion: a.metadata.resourceVersion, finalizers: ["f"] },
      }),
    ).toThrow(expect.objectContaining({ status: 409 }));
    expect(() =>
      api.patch("kmskeys", "ns", "a", "json", [
        { op: "test", path: "/metadata/resourceVersion", value: a.metadata.resourceVersion },
        { op: "add", path: "/metadata/finalizers", value: ["f"] },
      ]),
    ).toThrow(expect.objectContaining({ status: 409 }));
  });

  it("delete with finalizers marks the object; removing the last finalizer deletes it; no new finalizers while deleting", () => {
    const api = new EmbeddedApiServer();
    api.create("kmskeys", "ns", { ...key("a"), metadata: { name: "a", finalizers: ["f"] } });
    const marked = api.delete("kmskeys", "ns", "a");
    expect(marked.metadata.deletionTimestamp).toBeDefined();
    expect(() =>
      api.patch("kmskeys", "ns", "a", "merge", { metadata: { finalizers: ["f", "g"] } }),
    ).toThrow(/no new finalizers/);
    api.patch("kmskeys", "ns", "a", "merge", { metadata: { finalizers: [] } });
    expect(() => api.get("kmskeys", "ns", "a")).toThrow(expect.objectContaining({ status: 404 }));
  });

  it("replays watch events after a resourceVersion and answers 410 once that history is compacted", () => {
    const api = new EmbeddedApiServer();
    const a = api.create("kmskeys", "ns", key("a"));
    api.create("kmskeys", "ns", key("b"));
    const seen: string[] = [];
    const stop = api.watch("kmskeys", a.metadata.resourceVersion, (e) =>
      seen.push(`${e.type} ${e.object.metadata.name}`),
    );
    api.delete("kmskeys", "ns", "a");
    expect(seen).toEqual(["ADDED b", "DELETED a"]);
    stop();
    api.compact();
    expect(() => api.watch("kmskeys", a.metadata.resourceVersion, () => {})).toThrow(
      expect.objectContaining({ status: 410 }),
    );
  });
});

describe("mergePatch (RFC 7386)", () => {
  const json = fc.jsonValue();
  it("patching with the target itself changes nothing, for objects without nulls (property)", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
        (obj) => {
          expect(mergePatch(obj, obj)).toEqual(obj);
        },
      ),
    );
  });
  it("null removes a member; a non-object patch replaces the target (property)", () => {
    fc.assert(
      fc.property(json, fc.string(), (target, k) => {
        const patched = mergePatch({ [k]: target, keep: 1 }, { [k]: null }) as Record<
          string,
          unknown
        >;
        expect(Object.hasOwn(patched, k)).toBe(false);
        expect(mergePatch(target, 5)).toBe(5);
      }),
    );
  });
});

describe("EmbeddedApiServer Leases, as the real API server decodes them", () => {
  const lease = (renewTime: unknown) => ({
    metadata: { name: "l" },
    spec: { holderIdentity: "a", renewTime },
  });

  it("refuses a MicroTime without exactly six fractional digits (400), on create and update", () => {
    const api = new EmbeddedApiServer();
    for (const bad of ["2026-12-02T03:19:52.980Z", "2026-12-02T03:19:52Z", 1764645592980])
      expect(() => api.create("leases", "ns", lease(bad))).toThrow(
        expect.objectContaining({ status: 400, reason: "BadRequest" }),
      );
    const ok = api.create("leases", "ns", lease("2026-12-02T03:19:52.980000Z"));
    expect(() =>
      api.replace("leases", "ns", "l", {
        ...lease("2026-12-02T03:19:53.001Z"),
        metadata: { name: "l", resourceVersion: ok.metadata.resourceVersion },
      }),
    ).toThrow(expect.objectContaining({ status: 400 }));
    expect(() =>
      api.patch("leases", "ns", "l", "merge", { spec: { acquireTime: "2026-12-02T03:19:53Z" } }),
    ).toThrow(expect.objectContaining({ status: 400 }));
    expect(
      api.patch("leases", "ns", "l", "merge", {
        spec: { acquireTime: "2026-12-02T03:19:53.000000+01:00" },
      }).metadata.resourceVersion,
    ).not.toBe(ok.metadata.resourceVersion);
  });
});

describe("EmbeddedApiServer custom resources, as Go maps", () => {
  it("returns members in sorted order, whatever order they were written in; a reordered no-op is no write", () => {
    const api = new EmbeddedApiServer();
    api.create("kmskeys", "ns", key("a", { tags: { z: "1", a: "2" }, description: "d" }));
    const written = api.patch(
      "kmskeys",
      "ns",
      "a",
      "merge",
      {
        status: {
          keyState: "Enabled",
          arn: "arn:x",
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "KeyEnabled",
              message: "m",
              lastTransitionTime: "2026-12-02T00:00:00Z",
            },
          ],
        },
      },
      "status",
    );
    const read = api.get("kmskeys", "ns", "a");
    expect(Object.keys(read["status"] as object)).toEqual(["arn", "conditions", "keyState"]);
    expect(Object.keys((read["status"] as { conditions: object[] }).conditions[0]!)).toEqual([
      "lastTransitionTime",
      "message",
      "reason",
      "status",
      "type",
    ]);
    expect(Object.keys((read["spec"] as { tags: object }).tags)).toEqual(["a", "z"]);
    expect(Object.keys(read)).toEqual([...Object.keys(read)].sort());
    const again = api.patch(
      "kmskeys",
      "ns",
      "a",
      "merge",
      { status: { arn: "arn:x", keyState: "Enabled" } },
      "status",
    );
    expect(again.metadata.resourceVersion).toBe(written.metadata.resourceVersion);
  });
});
