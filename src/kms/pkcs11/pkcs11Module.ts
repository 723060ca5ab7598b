/**
 * One loaded PKCS#11 module per path, shared by every user in the process (the root key,
 * each custom key store's token). A module has one library state: a second C_Initialize
 * is refused and any user's C_Finalize would end every other user's sessions. So the first
 * `acquireModule` loads and initializes it, and the last `release` finalizes it; a user
 * that lost its token (a p11-kit server restart) releases, and the next acquire after all
 * have released starts the library afresh (what p11-kit-client.so needs to reconnect).
 */
import pkcs11js from "pkcs11js";

export interface ModuleLease {
  readonly lib: pkcs11js.PKCS11;
  /** Once per lease; the module is finalized when no lease is left. */
  release(): void;
}

interface Loaded {
  readonly lib: pkcs11js.PKCS11;
  leases: number;
}

const loaded = new Map<string, Loaded>();

/** The module's load error (a missing file, a wrong architecture): a configuration error. */
export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
}

export function acquireModule(path: string): ModuleLease {
  let entry = loaded.get(path);
  if (!entry) {
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(path);
    } catch (err) {
      throw new ModuleLoadError(
        `cannot load the PKCS#11 module ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    try {
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      unload(lib);
      throw err;
    }
    entry = { lib, leases: 0 };
    loaded.set(path, entry);
  }
  const held = entry;
  held.leases++;
  let released = false;
  return {
    lib: held.lib,
    release: () => {
      if (released) return;
      released = true;
      if (--held.leases > 0) return;
      if (loaded.get(path) === held) loaded.delete(path);
      try {
        held.lib.C_Finalize();
      } catch {
        // The socket is gone or the token went away: nothing left to release.
      }
      unload(held.lib);
    },
  };
}

function unload(lib: pkcs11js.PKCS11): void {
  try {
    lib.close();
  } catch {
    // Already unloaded.
  }
}
