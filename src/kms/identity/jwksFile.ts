/** The issuer's JWKS from a file, re-read when the file changes (the cluster rotates its keys). */
import { readFileSync, statSync } from "node:fs";
import { parseJwks, type JwksKey } from "./jwt.js";

export function jwksFromFile(path: string): () => readonly JwksKey[] {
  let mtime = statSync(path).mtimeMs;
  let keys = parseJwks(readFileSync(path, "utf8"));
  return () => {
    try {
      const m = statSync(path).mtimeMs;
      if (m !== mtime) {
        keys = parseJwks(readFileSync(path, "utf8"));
        mtime = m;
      }
    } catch {
      // Keep the last good keys while the file is being replaced.
    }
    return keys;
  };
}
