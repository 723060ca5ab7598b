/** A copy of `record` without `keys` (exactOptionalPropertyTypes forbids setting them to undefined). */
export function omit<T extends object, K extends keyof T>(record: T, ...keys: K[]): Omit<T, K> {
  const copy: Partial<T> = { ...record };
  for (const k of keys) delete copy[k];
  return copy as Omit<T, K>;
}
