#!/usr/bin/env python3
"""boto3 as a real KMS client of Keyhaven, for the integration tests.

Reads the standard AWS_* environment (AWS_ENDPOINT_URL_KMS points it at the server).
Usage:
  boto3_client.py roundtrip ALIAS   create a key and ALIAS, encrypt/decrypt with a context,
                                    generate a data key and decrypt it; print a JSON summary
  boto3_client.py decrypt B64       decrypt a base64 ciphertext blob; print its key ARN and the
                                    plaintext (base64) as JSON
  boto3_client.py error KEY_ID      call DescribeKey and Decrypt with bad input; print the
                                    ClientError codes and HTTP statuses as JSON
"""
import base64
import json
import sys

import boto3
from botocore.exceptions import ClientError


def client():
    return boto3.client("kms")


def roundtrip(alias):
    kms = client()
    key = kms.create_key(Description="boto3 key")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    context = {"purpose": "boto3-test", "tenant": "a"}
    plaintext = b"hello from boto3 \x00\xff"
    enc = kms.encrypt(KeyId=alias, Plaintext=plaintext, EncryptionContext=context)
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=context)
    dk = kms.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext=context)
    dk_dec = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=context)
    try:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"purpose": "other"})
        wrong_context = "no error"
    except ClientError as err:
        wrong_context = err.response["Error"]["Code"]
    print(json.dumps({
        "keyArn": key["Arn"],
        "encryptKeyId": enc["KeyId"],
        "decryptKeyId": dec["KeyId"],
        "roundTrip": dec["Plaintext"] == plaintext,
        "dataKeyLength": len(dk["Plaintext"]),
        "dataKeyRoundTrip": dk_dec["Plaintext"] == dk["Plaintext"],
        "wrongContext": wrong_context,
        "ciphertextB64": base64.b64encode(enc["CiphertextBlob"]).decode(),
    }))


def decrypt(ciphertext_b64):
    out = client().decrypt(CiphertextBlob=base64.b64decode(ciphertext_b64))
    print(json.dumps({
        "keyId": out["KeyId"],
        "plaintextB64": base64.b64encode(out["Plaintext"]).decode(),
    }))


def error(key_id):
    kms = client()
    out = {}
    for name, call in [
        ("describeKey", lambda: kms.describe_key(KeyId=key_id)),
        ("decryptGarbage", lambda: kms.decrypt(CiphertextBlob=b"\x01" * 40)),
        ("generateRandom", lambda: kms.generate_random(NumberOfBytes=1025)),
    ]:
        try:
            call()
            out[name] = {"code": None}
        except ClientError as err:
            out[name] = {
                "code": err.response["Error"]["Code"],
                "message": err.response["Error"].get("Message", ""),
                "status": err.response["ResponseMetadata"]["HTTPStatusCode"],
            }
    print(json.dumps(out))


if __name__ == "__main__":
    {"roundtrip": roundtrip, "decrypt": decrypt, "error": error}[sys.argv[1]](*sys.argv[2:])
