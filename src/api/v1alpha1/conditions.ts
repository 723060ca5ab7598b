/**
 * metav1.Condition helpers: a condition's lastTransitionTime changes only when its
 * status flips, and every condition carries the generation it was computed from.
 */
import type { Condition } from "./types.js";

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Returns a new list with `next` set (by type), keeping the old transition time if the status is unchanged. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const previous = i >= 0 ? list[i] : undefined;
  const condition: Condition = {
    type: next.type,
    status: next.status,
    observedGeneration: generation,
    lastTransitionTime:
      previous && previous.status === next.status ? previous.lastTransitionTime : rfc3339(now),
    reason: next.reason,
    message: next.message.slice(0, 32768),
  };
  if (i >= 0) list[i] = condition;
  else list.push(condition);
  return list;
}

export function setConditions(
  conditions: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  generation: number,
  now: Date,
): Condition[] {
  return next.reduce<Condition[]>(
    (list, c) => setCondition(list, c, generation, now),
    [...(conditions ?? [])],
  );
}

export function removeCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export const isReady = (conditions: readonly Condition[] | undefined): boolean =>
  findCondition(conditions, "Ready")?.status === "True";

/** Kubernetes timestamps: RFC 3339 in UTC with second precision. */
export const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");
