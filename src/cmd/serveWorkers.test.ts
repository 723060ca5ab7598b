import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { availableCpus, cgroupQuota } from "./serveWorkers.js";

/** A /sys/fs/cgroup with these files (others missing). */
const cgroup = (files: Record<string, string>) => (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: "ENOENT" });
  return text;
};

describe("the CPUs serve --workers defaults to", () => {
  it.each([
    ["a cgroup v2 quota of 2 CPUs", { "/sys/fs/cgroup/cpu.max": "200000 100000\n" }, 2],
    ["a fractional quota, rounded down", { "/sys/fs/cgroup/cpu.max": "150000 100000\n" }, 1.5],
    ["no quota", { "/sys/fs/cgroup/cpu.max": "max 100000\n" }, undefined],
    [
      "a cgroup v1 quota",
      {
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
      },
      3,
    ],
    [
      "cgroup v1 without a quota",
      {
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
      },
      undefined,
    ],
    ["no cgroup files", {}, undefined],
  ])("%s", (_name, files, quota) => {
    expect(cgroupQuota(cgroup(files))).toBe(quota);
  });

  it("is the quota rounded down, at least 1, at most the CPUs there are", () => {
    const cpus = availableParallelism();
    const max = (q: string) => cgroup({ "/sys/fs/cgroup/cpu.max": `${q} 100000` });
    expect(availableCpus(max("50000"))).toBe(1);
    expect(availableCpus(max("150000"))).toBe(Math.min(cpus, 1));
    expect(availableCpus(max(String(1000 * 100000)))).toBe(cpus);
    expect(availableCpus(max("max"))).toBe(cpus);
  });
});
