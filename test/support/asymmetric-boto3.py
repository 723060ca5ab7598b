#!/usr/bin/env python3
"""boto3 as a client of Keyhaven's asymmetric and HMAC operations (issue 3 tests).

Reads the standard AWS_* environment. Usage:
  asymmetric-boto3.py SIGN_KEY RSA_KEY MAC_KEY SYMMETRIC_KEY AGREEMENT_KEY LOCAL_CIPHERTEXT_B64 PEER_SPKI_B64
Prints one JSON document with base64 blobs and error codes; the calling test checks
them with OpenSSL and node:crypto.
"""
import base64
import hashlib
import json
import sys

import boto3
from botocore.exceptions import ClientError


def b64(data):
    return base64.b64encode(data).decode()


def code(call):
    try:
        call()
        return None
    except ClientError as err:
        return err.response["Error"]["Code"]


def main(sign_key, rsa_key, mac_key, symmetric_key, agreement_key, local_ct, peer_spki):
    kms = boto3.client("kms")
    out = {}
    message = b"signed by boto3 \x00\xff"
    sig = kms.sign(KeyId=sign_key, Message=message, SigningAlgorithm="ECDSA_SHA_256")
    out["message"] = b64(message)
    out["signature"] = b64(sig["Signature"])
    out["signKeyId"] = sig["KeyId"]
    out["verified"] = kms.verify(KeyId=sign_key, Message=message, Signature=sig["Signature"],
                                 SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    digest = hashlib.sha256(message).digest()
    dsig = kms.sign(KeyId=sign_key, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")
    out["digestSignature"] = b64(dsig["Signature"])
    bad = bytearray(sig["Signature"])
    bad[-1] ^= 1
    out["badSignature"] = code(lambda: kms.verify(KeyId=sign_key, Message=message, Signature=bytes(bad),
                                                  SigningAlgorithm="ECDSA_SHA_256"))
    out["shortDigest"] = code(lambda: kms.sign(KeyId=sign_key, Message=digest[:31], MessageType="DIGEST",
                                               SigningAlgorithm="ECDSA_SHA_256"))
    pub = kms.get_public_key(KeyId=sign_key)
    out["publicKey"] = b64(pub["PublicKey"])
    out["publicKeySpec"] = pub["KeySpec"]
    out["publicKeySigning"] = pub["SigningAlgorithms"]

    dec = kms.decrypt(KeyId=rsa_key, CiphertextBlob=base64.b64decode(local_ct), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    out["localDecrypted"] = b64(dec["Plaintext"])
    enc = kms.encrypt(KeyId=rsa_key, Plaintext=b"rsa via boto3", EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    out["rsaRoundTrip"] = kms.decrypt(KeyId=rsa_key, CiphertextBlob=enc["CiphertextBlob"],
                                      EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == b"rsa via boto3"
    out["rsaTooLarge"] = code(lambda: kms.encrypt(KeyId=rsa_key, Plaintext=b"x" * 191,
                                                  EncryptionAlgorithm="RSAES_OAEP_SHA_256"))

    mac = kms.generate_mac(KeyId=mac_key, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    out["macValid"] = kms.verify_mac(KeyId=mac_key, Message=message, Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]
    flipped = bytearray(mac)
    flipped[0] ^= 0x80
    out["flippedMac"] = code(lambda: kms.verify_mac(KeyId=mac_key, Message=message, Mac=bytes(flipped),
                                                    MacAlgorithm="HMAC_SHA_256"))
    out["wrongMacAlgorithm"] = code(lambda: kms.generate_mac(KeyId=mac_key, Message=message, MacAlgorithm="HMAC_SHA_512"))

    pair = kms.generate_data_key_pair(KeyId=symmetric_key, KeyPairSpec="ECC_NIST_P384", EncryptionContext={"who": "boto3"})
    out["pairPrivate"] = b64(pair["PrivateKeyPlaintext"])
    out["pairPublic"] = b64(pair["PublicKey"])
    out["pairDecrypts"] = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"],
                                      EncryptionContext={"who": "boto3"})["Plaintext"] == pair["PrivateKeyPlaintext"]

    shared = kms.derive_shared_secret(KeyId=agreement_key, KeyAgreementAlgorithm="ECDH",
                                      PublicKey=base64.b64decode(peer_spki))
    out["sharedSecret"] = b64(shared["SharedSecret"])
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:8])
