import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Integration files mostly wait on child processes (key services, kube-apiserver,
    // helm, the aws CLI), so two files per core keep the cores busy; vitest's default
    // in run mode is one worker fewer than the cores (a single one on 2 cores).
    maxWorkers: availableParallelism() * 2,
    projects: [
      { extends: true, test: { name: "unit", include: ["src/**/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          globalSetup: ["test/support/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
