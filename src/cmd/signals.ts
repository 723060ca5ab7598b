/** Resolves on the first SIGTERM or SIGINT: the signal to shut a command down gracefully. */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
}
