/**
 * The structure of src/ as rules anyone can check (docs/architecture.md, "Layers"):
 * `npx depcruise src` (part of `npm run lint`). Type-only imports count: a cycle of types
 * is still two modules that cannot be understood, moved or tested one without the other.
 * Unit tests (*.test.ts) are leaves and are not cruised. test/structure.test.ts proves
 * each rule fires.
 */

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    {
      name: "no-cycle",
      severity: "error",
      comment:
        "An import cycle in src/: break it by moving the shared part (a type, a constant) to the lower module, or by passing it in.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-test-imports-in-src",
      severity: "error",
      comment:
        "Production code imports test fakes or test support: move what production needs into src/, what only tests need into test/.",
      from: { path: "^src/" },
      to: { path: "^test/" },
    },
    {
      name: "config-imports-nothing-of-the-app",
      severity: "error",
      comment:
        "src/config/ turns flags and environment into values and imports nothing else of src/: declare the value (a type, a default) in config/ and let the part import it.",
      from: { path: "^src/config/" },
      to: { path: "^src/", pathNot: "^src/config/" },
    },
    {
      name: "foundation-imports-nothing-of-the-app",
      severity: "error",
      comment:
        "src/time.ts, src/observability/ and src/http/ serve every part and import none of them: pass what they need in (a Clock, a destination).",
      from: { path: "^src/(observability/|http/|time\\.ts$)" },
      to: { path: "^src/", pathNot: "^src/(observability/|http/|time\\.ts$)" },
    },
    {
      name: "kms-core-stays-below-kubernetes-and-start-up",
      severity: "error",
      comment:
        "The key service core (src/kms/) imports nothing of the controller, the webhook, Kubernetes, the agent or the commands: they use it, not the other way round.",
      from: { path: "^src/kms/" },
      to: { path: "^src/(controller|webhook|kube|agent|cmd)/|^src/main\\.ts$" },
    },
    {
      name: "kube-stays-below-the-controller",
      severity: "error",
      comment:
        "src/kube/ is the adapter to the API server: it imports nothing of the controller, the key service core or the commands (time comes from src/time.ts).",
      from: { path: "^src/kube/" },
      to: { path: "^src/(controller|kms|cmd)/" },
    },
    {
      name: "controller-is-a-client-of-the-key-service",
      severity: "error",
      comment:
        "The controller reaches the key service through its API (an AWS SDK client), never src/kms/, and leaves the webhook and the agent to src/cmd/ to compose.",
      from: { path: "^src/controller/" },
      to: { path: "^src/(kms|webhook|agent)/" },
    },
    {
      name: "webhook-and-agent-stay-apart-from-the-controller",
      severity: "error",
      comment:
        "The webhook and the agent import nothing of the controller or the key service core (the webhook may import the agent's plan: the contract it writes for the agent).",
      from: { path: "^src/(webhook|agent)/" },
      to: { path: "^src/(controller|kms)/" },
    },
    {
      name: "resource-types-at-the-bottom",
      severity: "error",
      comment:
        "src/api/ (the KmsKey/KmsAlias/KmsGrant types, defaults, schemas) builds only on the policy vocabulary of src/kms/authz/ (pure).",
      from: { path: "^src/api/" },
      to: { path: "^src/", pathNot: "^src/(api|kms/authz)/" },
    },
    {
      name: "api-re-exports-nothing",
      severity: "error",
      comment:
        "src/api/ imports what it uses of the core and re-exports none of it: a name has one home, where its users import it from.",
      from: { path: "^src/api/" },
      to: { path: "^src/", pathNot: "^src/api/", dependencyTypes: ["export"] },
    },
    {
      name: "only-entry-points-import-commands",
      severity: "error",
      comment:
        "Commands (src/cmd/) compose the parts; no part imports a command. Only src/main.ts and the benchmarks' entries (src/bench/) may.",
      from: { path: "^src/", pathNot: "^src/(cmd/|bench/|main\\.ts$)" },
      to: { path: "^src/cmd/|^src/main\\.ts$" },
    },
  ],
  options: {
    // Follow src/ and record (without crawling) what it reaches in test/ and node_modules/.
    doNotFollow: { path: ["node_modules", "^test/"] },
    exclude: { path: "\\.test\\.ts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    cache: false,
  },
};
