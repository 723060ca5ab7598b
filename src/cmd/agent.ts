/**
 * `keyhaven agent` as a process: builds the KMS client (credentials, endpoint and
 * region from the standard AWS_* environment, as every AWS SDK reads them — in a pod
 * that is the web-identity token exchanged through STS), picks the data-key store,
 * then runs once (init container) or keeps refreshing (native sidecar).
 *
 * Exit codes: 0 done; 1 permanent error (unknown key, access denied, bad plan …);
 * 3 gave up on transient errors after the deadline.
 */
import { KMSClient } from "@aws-sdk/client-kms";
import type { AgentConfig } from "../config/config.js";
import {
  AgentError,
  DEFAULT_RETRY,
  parsePlan,
  runAgentOnce,
  type AgentDependencies,
} from "../agent/agent.js";
import { systemClock, type Clock } from "../time.js";
import { directoryDataKeyStore, type DataKeyStore } from "../agent/dataKeyStore.js";

export type AgentCommandConfig = AgentConfig;

export interface AgentCommandDependencies {
  readonly kms?: AgentDependencies["kms"];
  readonly store?: DataKeyStore;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Reads the time and waits between refreshes and retries (tests pass a fake). */
  readonly clock?: Clock;
}

/** `keyhaven agent` as a process: SIGTERM or SIGINT stops a refreshing sidecar. */
export function runAgent(config: AgentConfig): Promise<number> {
  const stop = new AbortController();
  process.once("SIGTERM", () => stop.abort());
  process.once("SIGINT", () => stop.abort());
  return runAgentCommand(config, { signal: stop.signal });
}

export async function runAgentCommand(
  config: AgentCommandConfig,
  deps: AgentCommandDependencies = {},
): Promise<number> {
  const log = deps.log ?? ((line: string) => process.stderr.write(`keyhaven agent: ${line}\n`));
  try {
    const plan = parsePlan(config.plan);
    if (!plan.dataKey && plan.env.length === 0) {
      log("nothing to do: the plan asks for no data key and no encrypted env values");
      return 0;
    }
    const clock = deps.clock ?? systemClock;
    const store = deps.store ?? (await openStore(config));
    const kms = deps.kms ?? new KMSClient({});
    const agentDeps: AgentDependencies = {
      kms,
      store,
      dir: config.dir,
      log,
      clock,
      ...(deps.signal && { signal: deps.signal }),
      retry: { ...DEFAULT_RETRY, deadlineMs: config.timeoutSeconds * 1000 },
    };
    await runAgentOnce(plan, agentDeps);
    if (config.refreshIntervalSeconds <= 0) return 0;
    log(`refreshing every ${config.refreshIntervalSeconds} s`);
    for (;;) {
      try {
        await clock.sleep(config.refreshIntervalSeconds * 1000, deps.signal);
      } catch {
        return 0; // stopped
      }
      try {
        await runAgentOnce(plan, agentDeps);
      } catch (err) {
        // Keep serving the files we have; the next round tries again.
        log(
          `refresh failed, keeping the current files: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  } catch (err) {
    if (err instanceof AgentError) {
      log(err.message);
      return err.permanent ? 1 : 3;
    }
    if (err instanceof Error && err.name === "AbortError") return 0;
    throw err;
  }
}

async function openStore(config: AgentCommandConfig): Promise<DataKeyStore> {
  if (config.dataKeyStore.kind === "directory")
    return directoryDataKeyStore(config.dataKeyStore.path);
  const namespace = config.dataKeyStore.namespace;
  if (!namespace)
    throw new AgentError(
      "the data-key store is a Kubernetes Secret but the pod's namespace is unknown; set POD_NAMESPACE or --namespace",
      true,
    );
  const { loadKubeConfig } = await import("../kube/kubeConfig.js");
  const { secretDataKeyStore } = await import("../kube/secretDataKeyStore.js");
  return secretDataKeyStore(loadKubeConfig(), namespace);
}
