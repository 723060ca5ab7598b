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
