/**
 * What each KeySpec allows: its usages (the first is the default where AWS has
 * one) and the algorithms DescribeKey lists for each usage.
 */
export type KeyUsage = "ENCRYPT_DECRYPT" | "SIGN_VERIFY" | "GENERATE_VERIFY_MAC" | "KEY_AGREEMENT";

export interface KeySpecInfo {
  readonly usages: readonly KeyUsage[];
  /** Usage assumed when CreateKey names none; only symmetric keys have one. */
  readonly defaultUsage?: KeyUsage;
  readonly encryptionAlgorithms?: readonly string[];
  readonly signingAlgorithms?: readonly string[];
  readonly macAlgorithms?: readonly string[];
  readonly keyAgreementAlgorithms?: readonly string[];
}

const RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];
const RSA_SIGNING = [
  "RSASSA_PSS_SHA_256",
  "RSASSA_PSS_SHA_384",
  "RSASSA_PSS_SHA_512",
  "RSASSA_PKCS1_V1_5_SHA_256",
  "RSASSA_PKCS1_V1_5_SHA_384",
  "RSASSA_PKCS1_V1_5_SHA_512",
];
const rsa: KeySpecInfo = {
  usages: ["ENCRYPT_DECRYPT", "SIGN_VERIFY"],
  encryptionAlgorithms: RSA_ENCRYPTION,
  signingAlgorithms: RSA_SIGNING,
};
const nist = (alg: string): KeySpecInfo => ({
  usages: ["SIGN_VERIFY", "KEY_AGREEMENT"],
  signingAlgorithms: [alg],
  keyAgreementAlgorithms: ["ECDH"],
});
const hmac = (alg: string): KeySpecInfo => ({
  usages: ["GENERATE_VERIFY_MAC"],
  macAlgorithms: [alg],
});

export const keySpecs: Readonly<Record<string, KeySpecInfo>> = {
  SYMMETRIC_DEFAULT: {
    usages: ["ENCRYPT_DECRYPT"],
    defaultUsage: "ENCRYPT_DECRYPT",
    encryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
  },
  RSA_2048: rsa,
  RSA_3072: rsa,
  RSA_4096: rsa,
  ECC_NIST_P256: nist("ECDSA_SHA_256"),
  ECC_NIST_P384: nist("ECDSA_SHA_384"),
  ECC_NIST_P521: nist("ECDSA_SHA_512"),
  ECC_SECG_P256K1: { usages: ["SIGN_VERIFY"], signingAlgorithms: ["ECDSA_SHA_256"] },
  ECC_NIST_EDWARDS25519: {
    usages: ["SIGN_VERIFY"],
    signingAlgorithms: ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
  },
  HMAC_224: hmac("HMAC_SHA_224"),
  HMAC_256: hmac("HMAC_SHA_256"),
  HMAC_384: hmac("HMAC_SHA_384"),
  HMAC_512: hmac("HMAC_SHA_512"),
};

export const isSymmetric = (keySpec: string): boolean => keySpec === "SYMMETRIC_DEFAULT";
