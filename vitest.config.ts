import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Integration files mostly wait on child processes (key services, kube-apiserver,
    // helm, the aws CLI): one file per core, where vitest's default in run mode leaves
    // a core idle (a single worker on 2 cores).
    maxWorkers: availableParallelism(),
    // The AWS SDK warns once per process that its 2027 releases need Node 22; on Node 20
    // that is every test file. The SDK's documented switch (aws/aws-sdk-js-v3#7983).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
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
