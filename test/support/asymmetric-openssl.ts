/**
 * OpenSSL as an independent checker for the asymmetric tests: writes inputs to a temp
 * folder and runs `openssl dgst` / `openssl pkeyutl` on the server's public keys.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./server.js";

const dir = tempDir("keyhaven-openssl-");
let n = 0;

function file(bytes: Uint8Array): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, bytes);
  return path;
}

function run(args: string[]): { ok: boolean; stdout: Buffer } {
  try {
    return {
      ok: true,
      stdout: execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] }),
    };
  } catch (err) {
    return { ok: false, stdout: (err as { stdout?: Buffer }).stdout ?? Buffer.alloc(0) };
  }
}

const HASH: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };
export const hashOf = (algorithm: string): string => HASH[algorithm.slice(-3)]!;

function pssOptions(algorithm: string, flag: "-sigopt" | "-pkeyopt"): string[] {
  return algorithm.startsWith("RSASSA_PSS")
    ? [flag, "rsa_padding_mode:pss", flag, "rsa_pss_saltlen:digest"]
    : [];
}

/** `openssl dgst -<hash> -verify pub.der -signature sig msg` (hashes the message itself). */
export function opensslDgstVerify(
  publicKeyDer: Uint8Array,
  algorithm: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const result = run([
    "dgst",
    `-${hashOf(algorithm)}`,
    "-verify",
    file(publicKeyDer),
    "-keyform",
    "DER",
    ...pssOptions(algorithm, "-sigopt"),
    "-signature",
    file(signature),
    file(message),
  ]);
  return result.ok && result.stdout.toString().includes("Verified OK");
}

/** `openssl pkeyutl -verify` on a digest (no hashing): checks MessageType DIGEST signatures. */
export function opensslPkeyutlVerifyDigest(
  publicKeyDer: Uint8Array,
  algorithm: string,
  digest: Uint8Array,
  signature: Uint8Array,
): boolean {
  const result = run([
    "pkeyutl",
    "-verify",
    "-pubin",
    "-keyform",
    "DER",
    "-inkey",
    file(publicKeyDer),
    "-in",
    file(digest),
    "-sigfile",
    file(signature),
    "-pkeyopt",
    `digest:${hashOf(algorithm)}`,
    ...pssOptions(algorithm, "-pkeyopt"),
  ]);
  return result.ok && result.stdout.toString().includes("Signature Verified Successfully");
}

/** Ed25519 (PureEdDSA) verification of a raw message. */
export function opensslEd25519Verify(
  publicKeyDer: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const result = run([
    "pkeyutl",
    "-verify",
    "-pubin",
    "-keyform",
    "DER",
    "-inkey",
    file(publicKeyDer),
    "-rawin",
    "-in",
    file(message),
    "-sigfile",
    file(signature),
  ]);
  return result.ok && result.stdout.toString().includes("Signature Verified Successfully");
}

/** RSAES-OAEP encryption with OpenSSL (MGF1 uses the OAEP digest, as in AWS KMS). */
export function opensslOaepEncrypt(
  publicKeyDer: Uint8Array,
  hash: "sha1" | "sha256",
  plaintext: Uint8Array,
): Buffer {
  return execFileSync("openssl", [
    "pkeyutl",
    "-encrypt",
    "-pubin",
    "-keyform",
    "DER",
    "-inkey",
    file(publicKeyDer),
    "-in",
    file(plaintext),
    "-pkeyopt",
    "rsa_padding_mode:oaep",
    "-pkeyopt",
    `rsa_oaep_md:${hash}`,
    "-pkeyopt",
    `rsa_mgf1_md:${hash}`,
  ]);
}

/** ECDH with OpenSSL: `openssl pkeyutl -derive` from our private key (PEM) and the server's public key. */
export function opensslDerive(privateKeyPem: string, peerPublicKeyDer: Uint8Array): Buffer {
  const peerPem = join(dir, `peer${n++}.pem`);
  execFileSync("openssl", [
    "pkey",
    "-pubin",
    "-inform",
    "DER",
    "-in",
    file(peerPublicKeyDer),
    "-out",
    peerPem,
  ]);
  return execFileSync("openssl", [
    "pkeyutl",
    "-derive",
    "-inkey",
    file(Buffer.from(privateKeyPem)),
    "-peerkey",
    peerPem,
  ]);
}
