/**
 * AES-256-GCM under a key that stays in a token: native CKM_AES_GCM (C_Encrypt/C_Decrypt)
 * when the token offers it, else GCM composed around the token's CKM_AES_ECB
 * (pkcs11/gcmOverBlockCipher.ts), which is what crosses p11-kit 0.24's socket. Both give
 * the same bytes. Used by the pkcs11 root key and by keys in AWS_CLOUDHSM custom key stores,
 * with keys made by generateTokenAesKey.
 */
import pkcs11js from "pkcs11js";
import { gcmOpen, gcmSeal, GCM_TAG_BYTES } from "./gcmOverBlockCipher.js";
import { answers, isPkcs11Error, type Connection, type Handle } from "./pkcs11Token.js";

/** What C_Decrypt says about a blob that does not authenticate under native CKM_AES_GCM. */
const NOT_AUTHENTIC = new Set([
  pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
]);

function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 },
  } as pkcs11js.Mechanism;
}

function ecb(
  c: Connection<unknown>,
  session: Handle,
  key: Handle,
  blocks: Buffer,
): Promise<Buffer> {
  c.lib.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_ECB }, key);
  return c.lib.C_EncryptAsync(session, blocks, Buffer.alloc(blocks.length));
}

/** Ciphertext ‖ tag (16) of `plaintext` under `key`, with the 12-byte `iv` and `aad`. */
export function gcmSealWithToken(
  c: Connection<unknown>,
  session: Handle,
  key: Handle,
  iv: Buffer,
  plaintext: Buffer,
  aad: Buffer,
): Promise<Buffer> {
  if (c.mechanism === "CKM_AES_ECB")
    return gcmSeal((blocks) => ecb(c, session, key, blocks), iv, plaintext, aad);
  c.lib.C_EncryptInit(session, gcmMechanism(iv, aad), key);
  return c.lib.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES));
}

/** The plaintext of ciphertext ‖ tag, or undefined when it does not authenticate. */
export async function gcmOpenWithToken(
  c: Connection<unknown>,
  session: Handle,
  key: Handle,
  iv: Buffer,
  sealed: Buffer,
  aad: Buffer,
): Promise<Buffer | undefined> {
  if (c.mechanism === "CKM_AES_ECB")
    return gcmOpen((blocks) => ecb(c, session, key, blocks), iv, sealed, aad);
  c.lib.C_DecryptInit(session, gcmMechanism(iv, aad), key);
  try {
    return await c.lib.C_DecryptAsync(session, sealed, Buffer.alloc(sealed.length));
  } catch (err) {
    if (isPkcs11Error(err) && NOT_AUTHENTIC.has(err.code)) return undefined;
    // Through p11-kit 0.25's socket a failed tag comes back as CKR_GENERAL_ERROR, which
    // also means a broken token. A session that still answers tells the two apart.
    if (isPkcs11Error(err) && err.code === pkcs11js.CKR_GENERAL_ERROR && answers(c, session))
      return undefined;
    throw err;
  }
}

/**
 * An AES-256 key generated in the token that can never leave it: CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, encrypt/decrypt only (no wrap, unwrap or derive).
 */
export function generateTokenAesKey(
  lib: pkcs11js.PKCS11,
  session: Handle,
  label: string,
  id?: Buffer,
): Handle {
  return lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_LABEL, value: label },
    ...(id ? [{ type: pkcs11js.CKA_ID, value: id }] : []),
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
  ]);
}
