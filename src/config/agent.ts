/** `keyhaven agent` (docs/injection.md); the webhook sets its environment in the pod. */
import { nonEmpty, optionalText, wholeNumber } from "./schemas.js";
import { command, flag } from "./table.js";

export interface AgentConfig {
  readonly command: "agent";
  /** Where the files go (the shared memory volume). */
  readonly dir: string;
  /** The JSON plan the webhook wrote (KEYHAVEN_AGENT_PLAN). */
  readonly plan?: string;
  /** Where the workload's encrypted data key is kept between starts. */
  readonly dataKeyStore:
    | { readonly kind: "kubernetes"; readonly namespace?: string }
    | { readonly kind: "directory"; readonly path: string };
  /** 0: run once and exit (init container); else re-run every N seconds (native sidecar). */
  readonly refreshIntervalSeconds: number;
  /** How long transient failures (key service or STS still starting) are retried. */
  readonly timeoutSeconds: number;
}

const seconds = wholeNumber(0, 9_999_999, (v) => `expected a whole number of seconds, got '${v}'`);

export const AGENT_FLAGS = {
  dir: flag({
    arg: "DIR",
    env: ["KEYHAVEN_AGENT_DIR"],
    default: "/var/run/keyhaven",
    schema: nonEmpty,
    help: "output folder",
  }),
  plan: flag({
    arg: "JSON",
    env: ["KEYHAVEN_AGENT_PLAN"],
    schema: optionalText,
    help: "what to fetch, as the webhook writes it",
  }),
  "data-key-store": flag({
    arg: "STORE",
    env: ["KEYHAVEN_AGENT_DATA_KEY_STORE"],
    default: "kubernetes",
    schema: nonEmpty,
    help: "'kubernetes' (a Secret in the pod's namespace) or a folder path",
  }),
  namespace: flag({
    arg: "NS",
    env: ["POD_NAMESPACE"],
    schema: optionalText,
    help: "the pod's namespace",
  }),
  "refresh-interval": flag({
    arg: "SECS",
    env: ["KEYHAVEN_AGENT_REFRESH_INTERVAL"],
    default: "0",
    schema: seconds,
    help: "keep running and refresh every SECS seconds; 0 = run once",
  }),
  timeout: flag({
    arg: "SECS",
    env: ["KEYHAVEN_AGENT_TIMEOUT"],
    default: "300",
    schema: seconds,
    help: "retry transient failures this long",
  }),
};

export const agentCommand = command({
  name: "agent",
  summary: "The init container the webhook injects into pods (see docs/injection.md).",
  description: `Fetches data keys and decrypts keyhaven:<base64> env values into files (mode 0400).
Credentials, endpoint and region come from the standard AWS_* environment.`,
  flags: AGENT_FLAGS,
  build: (c): AgentConfig => ({
    command: "agent",
    dir: c.dir,
    ...(c.plan !== undefined && { plan: c.plan }),
    dataKeyStore:
      c["data-key-store"] === "kubernetes"
        ? { kind: "kubernetes", ...(c.namespace !== undefined && { namespace: c.namespace }) }
        : { kind: "directory", path: c["data-key-store"] },
    refreshIntervalSeconds: c["refresh-interval"],
    timeoutSeconds: c.timeout,
  }),
});
