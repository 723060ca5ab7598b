/**
 * The agent's instructions, written by the webhook into the agent container's
 * KEYHAVEN_AGENT_PLAN env var as JSON. Holds key references and ciphertexts only.
 */

export interface EncryptedEnv {
  readonly container: string;
  readonly name: string;
  readonly ciphertext: string;
}

/** The pod's namespace and ServiceAccount: the encryption context of its data key and env values. */
export interface Workload {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** What to fetch, as the webhook wrote it into KEYHAVEN_AGENT_PLAN. */
export interface AgentPlan {
  readonly dataKey?: { readonly keyId: string; readonly secretName: string };
  readonly env: readonly EncryptedEnv[];
  /** Absent: no encryption context (plans written before workload binding). */
  readonly workload?: Workload;
}

/**
 * The encryption context that binds a workload's data key and `keyhaven:` env values to
 * it (docs/injection.md): key policies require it with `kms:EncryptionContext:` conditions.
 */
export function workloadContext(workload: Workload): Record<string, string> {
  return {
    "keyhaven:namespace": workload.namespace,
    "keyhaven:serviceaccount": workload.serviceAccount,
  };
}

/** A failure that ends the agent with a message for `kubectl logs` / `describe`. */
export class AgentError extends Error {
  override name = "AgentError";
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** Parses KEYHAVEN_AGENT_PLAN; a bad plan is a permanent error. */
export function parsePlan(text: string | undefined): AgentPlan {
  if (!text) return { env: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AgentError("KEYHAVEN_AGENT_PLAN is not JSON", true);
  }
  const p = raw as { dataKey?: unknown; env?: unknown; workload?: unknown };
  const w = p.workload as Partial<Record<keyof Workload, unknown>> | null | undefined;
  const ok =
    typeof raw === "object" &&
    raw !== null &&
    (p.dataKey === undefined ||
      (typeof p.dataKey === "object" &&
        p.dataKey !== null &&
        typeof (p.dataKey as { keyId?: unknown }).keyId === "string" &&
        typeof (p.dataKey as { secretName?: unknown }).secretName === "string")) &&
    (p.env === undefined ||
      (Array.isArray(p.env) &&
        p.env.every(
          (e: unknown) =>
            typeof e === "object" &&
            e !== null &&
            ["container", "name", "ciphertext"].every(
              (k) => typeof (e as Record<string, unknown>)[k] === "string",
            ) &&
            /^[A-Za-z_][A-Za-z0-9_]*$/.test((e as EncryptedEnv).name) &&
            /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test((e as EncryptedEnv).container),
        ))) &&
    (w === undefined ||
      (typeof w === "object" &&
        w !== null &&
        typeof w.namespace === "string" &&
        typeof w.serviceAccount === "string"));
  if (!ok)
    throw new AgentError("KEYHAVEN_AGENT_PLAN does not describe a keyhaven agent plan", true);
  return {
    ...(p.dataKey !== undefined && { dataKey: p.dataKey as AgentPlan["dataKey"] & object }),
    env: (p.env ?? []) as EncryptedEnv[],
    ...(w && {
      workload: { namespace: w.namespace as string, serviceAccount: w.serviceAccount as string },
    }),
  };
}
