// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Keeps the boundaries of DESIGN.md honest. */
const boundaries = {
  "no-restricted-imports": [
    "error",
    {
      paths: [
        { name: "@kubernetes/client-node", message: "Only src/kube/ talks to the API server." },
      ],
    },
  ],
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "charts/**", ".tmp/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ["*.js", "*.mjs", "scripts/*.mjs"],
        },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        URL: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
      },
    },
    rules: {
      ...boundaries,
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    files: ["src/kms/crypto/**", "src/kms/authz/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:http", "node:https", "http", "https", "@kubernetes/*"],
              message:
                "The crypto core and the policy evaluator import no HTTP or Kubernetes code.",
            },
            {
              group: ["**/protocol/**", "**/store/**"],
              message: "The crypto core and the policy evaluator stay pure.",
            },
          ],
        },
      ],
    },
  },
  {
    // The request path. In Node 20's V8 an object made by a leading spread that then gains
    // members ({ ...a, b }, { ...a, ...b }) costs 1–15 µs instead of ~0.1 µs (docs/benchmarks.md,
    // "Object spreads"): build it with a literal, or Object.assign({}, a, { b }).
    files: [
      "src/kms/protocol/**/*.ts",
      "src/kms/audit/**/*.ts",
      "src/kms/access/**/*.ts",
      "src/kms/authz/**/*.ts",
      "src/kms/crypto/**/*.ts",
      "src/kms/keys/**/*.ts",
      "src/kms/store/**/*.ts",
      "src/kms/xks/**/*.ts",
      "src/kms/operations/shared/**/*.ts",
      "src/kms/keyService.ts",
      "src/kms/request.ts",
      "src/observability/**/*.ts",
      "src/http/**/*.ts",
    ],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ObjectExpression > SpreadElement:first-child ~ *",
          message:
            "On the request path, do not start an object literal with a spread when members follow (slow in Node 20's V8): use a literal, or Object.assign({}, a, { b }).",
        },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/config/**"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Only src/config/ reads process.env." },
      ],
    },
  },
  {
    // The one place allowed to talk to the API server (DESIGN.md, Boundaries).
    files: ["src/kube/**/*.ts"],
    rules: { "no-restricted-imports": "off" },
  },
  { files: ["**/*.js", "**/*.mjs"], ...tseslint.configs.disableTypeChecked },
  {
    // bench/ and test/node24/ hold plain .mjs run by node (no type information), hence
    // only the .ts files.
    files: ["**/*.test.ts", "test/**/*.ts", "bench/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-floating-promises": "error",
    },
  },
);
