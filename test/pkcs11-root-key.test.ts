/**
 * The pkcs11 root key against SoftHSM2 behind a real `p11-kit server` process (the
 * sidecar shape), and against the SoftHSM2 module loaded directly on the same token.
 */
import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11RootKey } from "../src/kms/rootkey/pkcs11RootKey.js";
import { RootKeyError, RootKeyUnavailableError } from "../src/kms/rootkey/rootKey.js";
import {
  P11_KIT_CLIENT,
  sidecarMechanism,
  SOFTHSM_MODULE,
  startSoftHsm,
  type SoftHsm,
} from "./support/softhsm.js";

let hsm: SoftHsm;
let throughSidecar: ReturnType<typeof sidecarMechanism>;

beforeAll(async () => {
  hsm = await startSoftHsm();
  throughSidecar = sidecarMechanism(hsm);
  // p11-kit-client.so and libsofthsm2.so read these from the process environment.
  Object.assign(process.env, hsm.env, hsm.directEnv);
});
afterAll(() => hsm?.stop());

const options = (overrides: Partial<Parameters<typeof Pkcs11RootKey.open>[0]> = {}) => ({
  modulePath: P11_KIT_CLIENT,
  tokenLabel: hsm.tokenLabel,
  keyLabel: "root",
  pin: hsm.pin,
  reconnectIntervalMs: 50,
  healthCheckIntervalMs: 50,
  operationTimeoutMs: 2000,
  ...overrides,
});

/** Opens a root key, runs `fn`, closes it (one client of a module per process at a time). */
async function withRootKey<T>(
  o: ReturnType<typeof options>,
  fn: (k: Pkcs11RootKey) => Promise<T>,
): Promise<T> {
  const k = Pkcs11RootKey.open(o);
  try {
    return await fn(k);
  } finally {
    await k.close();
  }
}

/** A raw PKCS#11 session on the token, logged in as the user, for probing the key. */
function rawSession(modulePath: string): {
  lib: pkcs11js.PKCS11;
  session: pkcs11js.Handle;
  rootKey: pkcs11js.Handle;
  close: () => void;
} {
  const lib = new pkcs11js.PKCS11();
  lib.load(modulePath);
  lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  const slot = lib
    .C_GetSlotList(true)
    .find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === hsm.tokenLabel)!;
  const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  lib.C_Login(session, pkcs11js.CKU_USER, hsm.pin);
  lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: "root" }]);
  const [rootKey] = lib.C_FindObjects(session, 2);
  lib.C_FindObjectsFinal(session);
  return {
    lib,
    session,
    rootKey: rootKey!,
    close: () => {
      lib.C_Finalize();
      lib.close();
    },
  };
}

function pkcs11Code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return "CKR_OK";
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("pkcs11 root key through the p11-kit server sidecar", () => {
  let sealedThroughSidecar: Buffer;
  const material = randomBytes(32);

  it("generates the key in the token on first start and finds it by label after", async () => {
    sealedThroughSidecar = await withRootKey(options(), async (k) => {
      expect(k.readiness()).toBeUndefined();
      expect(k.id).toBe(`pkcs11:${hsm.tokenLabel}/root`);
      // p11-kit 0.24's RPC carries no GCM parameters (GCM is then composed around the
      // token's ECB); 0.25 forwards CKM_AES_GCM. The root key takes what the token offers.
      expect(k.mechanism).toBe(throughSidecar);
      return k.wrap(material, "material/k1/1");
    });
    const again = await withRootKey(options(), (k) =>
      k.unwrap(sealedThroughSidecar, "material/k1/1"),
    );
    expect(again.equals(material)).toBe(true);
  });

  it("binds the context: another context or a flipped bit does not authenticate", async () => {
    await withRootKey(options(), async (k) => {
      await expect(k.unwrap(sealedThroughSidecar, "material/k1/2")).rejects.toThrow(RootKeyError);
      const tampered = Buffer.from(sealedThroughSidecar);
      tampered[20]! ^= 1;
      await expect(k.unwrap(tampered, "material/k1/1")).rejects.toThrow(/does not authenticate/);
    });
  });

  it("produces standard AES-GCM: the module loaded directly (native CKM_AES_GCM) opens it and the other way round", async () => {
    const direct = options({ modulePath: SOFTHSM_MODULE });
    const reSealed = await withRootKey(direct, async (k) => {
      expect(k.mechanism).toBe("CKM_AES_GCM");
      expect((await k.unwrap(sealedThroughSidecar, "material/k1/1")).equals(material)).toBe(true);
      return k.wrap(material, "material/k1/1");
    });
    const opened = await withRootKey(options(), (k) => k.unwrap(reSealed, "material/k1/1"));
    expect(opened.equals(material)).toBe(true);
  });

  it("never lets the key out: CKA_VALUE is refused and wrapping it with a key of one's own is refused", () => {
    for (const modulePath of [P11_KIT_CLIENT, SOFTHSM_MODULE]) {
      const raw = rawSession(modulePath);
      try {
        const attrs = raw.lib.C_GetAttributeValue(raw.session, raw.rootKey, [
          { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_EXTRACTABLE },
          { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
          { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
          { type: pkcs11js.CKA_TOKEN },
        ]);
        expect(attrs.map((a) => a.value[0])).toEqual([1, 0, 1, 1, 1]);
        expect(
          pkcs11Code(() =>
            raw.lib.C_GetAttributeValue(raw.session, raw.rootKey, [{ type: pkcs11js.CKA_VALUE }]),
          ),
        ).toBe("CKR_ATTRIBUTE_SENSITIVE");
        // An RSA key pair of our own: CKM_RSA_PKCS has no parameters, so it crosses the socket too.
        const { publicKey } = raw.lib.C_GenerateKeyPair(
          raw.session,
          { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
          [
            { type: pkcs11js.CKA_TOKEN, value: false },
            { type: pkcs11js.CKA_WRAP, value: true },
            { type: pkcs11js.CKA_MODULUS_BITS, value: 2048 },
            { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ],
          [{ type: pkcs11js.CKA_TOKEN, value: false }],
        );
        expect(
          pkcs11Code(() =>
            raw.lib.C_WrapKey(
              raw.session,
              { mechanism: pkcs11js.CKM_RSA_PKCS },
              publicKey,
              raw.rootKey,
              Buffer.alloc(512),
            ),
          ),
        ).toBe("CKR_KEY_UNEXTRACTABLE");
        if (modulePath === SOFTHSM_MODULE) {
          // And with an AES key wrapping key (RFC 5649), which only the direct module offers.
          const kek = raw.lib.C_GenerateKey(raw.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
            { type: pkcs11js.CKA_TOKEN, value: false },
            { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
            { type: pkcs11js.CKA_WRAP, value: true },
          ]);
          expect(
            pkcs11Code(() =>
              raw.lib.C_WrapKey(
                raw.session,
                { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
                kek,
                raw.rootKey,
                Buffer.alloc(512),
              ),
            ),
          ).toBe("CKR_KEY_UNEXTRACTABLE");
        }
      } finally {
        raw.close();
      }
    }
  });

  it("refuses a wrong PIN at start with what to fix", () => {
    expect(() => Pkcs11RootKey.open(options({ pin: "wrong-pin" }))).toThrow(
      /token 'keyhaven' refused the PIN \(CKR_PIN_INCORRECT\); check --pkcs11-pin-file or KEYHAVEN_PKCS11_PIN/,
    );
  });

  it("refuses a key under the label that could leave the token", () => {
    const raw = rawSession(P11_KIT_CLIENT);
    try {
      raw.lib.C_GenerateKey(raw.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_LABEL, value: "exportable" },
        { type: pkcs11js.CKA_SENSITIVE, value: false },
        { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      ]);
    } finally {
      raw.close();
    }
    expect(() => Pkcs11RootKey.open(options({ keyLabel: "exportable" }))).toThrow(
      /could leave the token/,
    );
  });

  it("starts without the sidecar, says why it is not ready, fails fast, and connects when the sidecar comes", async () => {
    await hsm.killServer();
    try {
      await withRootKey(options(), async (k) => {
        expect(k.readiness()).toMatch(/no token labelled 'keyhaven'.*P11_KIT_SERVER_ADDRESS/);
        const started = Date.now();
        await expect(k.wrap(material, "c")).rejects.toThrow(RootKeyUnavailableError);
        expect(Date.now() - started).toBeLessThan(500);
        await hsm.startServer();
        await until(() => k.readiness() === undefined, "the reconnect");
        expect((await k.unwrap(sealedThroughSidecar, "material/k1/1")).equals(material)).toBe(true);
      });
    } finally {
      if (hsm.serverPid() === undefined) await hsm.startServer();
    }
  });

  it("survives the sidecar being killed and restarted: requests fail cleanly, then succeed", async () => {
    await withRootKey(options(), async (k) => {
      const before = await k.wrap(material, "c");
      await hsm.killServer();
      // Noticed by the next request or the health check, whichever comes first.
      await until(async () => {
        try {
          await k.wrap(material, "c");
          return false;
        } catch (err) {
          expect(err).toBeInstanceOf(RootKeyUnavailableError);
          return true;
        }
      }, "a failure");
      expect(k.readiness()).toBeDefined();
      await hsm.startServer();
      await until(() => k.readiness() === undefined, "the reconnect");
      expect((await k.unwrap(before, "c")).equals(material)).toBe(true);
      expect((await k.unwrap(await k.wrap(material, "d"), "d")).equals(material)).toBe(true);
    });
  });
});
