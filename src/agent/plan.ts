/**
 * The agent's instructions, written by the webhook into the agent container's
 * KEYHAVEN_AGENT_PLAN env var as JSON. Holds key references and ciphertexts only.
 */

export interface EncryptedEnv {
  readonly container: string;
  readonly name: string;
  readonly ciphertext: string;
}

/** What to fetch, as the webhook wrote it into KEYHAVEN_AGENT_PLAN. */
export interface AgentPlan {
  readonly dataKey?: { readonly keyId: string; readonly secretName: string };
  readonly env: readonly EncryptedEnv[];
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
  const p = raw as { dataKey?: unknown; env?: unknown };
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
        )));
  if (!ok)
    throw new AgentError("KEYHAVEN_AGENT_PLAN does not describe a keyhaven agent plan", true);
  return {
    ...(p.dataKey !== undefined && { dataKey: p.dataKey as AgentPlan["dataKey"] & object }),
    env: (p.env ?? []) as EncryptedEnv[],
  };
}
