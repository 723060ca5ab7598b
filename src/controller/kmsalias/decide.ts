/** KmsAlias decisions: what to do given the alias as the key service reports it. */

export type AliasDecision =
  | { action: "create" }
  | { action: "none" }
  | { action: "update" }
  | { action: "conflict"; pointsTo: string };

/**
 * `current`: the key the alias name points at now (undefined if the alias does not
 * exist). `owned`: this object created the alias (it is recorded in its status).
 */
export function decideAlias(
  current: string | undefined,
  target: string,
  owned: boolean,
): AliasDecision {
  if (current === undefined) return { action: "create" };
  if (current === target) return { action: "none" };
  return owned ? { action: "update" } : { action: "conflict", pointsTo: current };
}
