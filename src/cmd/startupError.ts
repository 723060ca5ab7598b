/** What stops a command from starting (a bad file, a busy port): one line and exit status 2. */
export class StartupError extends Error {
  override name = "StartupError";
}
