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
  boto3_client.py hsm-key STORE_ID  describe the (connected) custom key store, create a key in it
                                    and use it (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*);
                                    print a JSON summary
  boto3_client.py xks-key STORE_ID XKS_KEY_ID
                                    the same in an external key store, for the external key
                                    XKS_KEY_ID
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


def store_key(store_id, origin="AWS_CLOUDHSM", xks_key_id=None):
    kms = client()
    store = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    extra = {} if xks_key_id is None else {"XksKeyId": xks_key_id}
    key = kms.create_key(
        Origin=origin, CustomKeyStoreId=store_id, Description="in a custom key store", **extra
    )["KeyMetadata"]
    context = {"purpose": "hsm"}
    plaintext = b"kept by the HSM \x00\xff"
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context)
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=context)
    re = kms.re_encrypt(
        CiphertextBlob=enc["CiphertextBlob"],
        SourceEncryptionContext=context,
        DestinationKeyId=key["Arn"],
        DestinationEncryptionContext={"purpose": "moved"},
    )
    re_dec = kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"purpose": "moved"})
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    dk_dec = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    dkw = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=16)
    dkw_dec = kms.decrypt(CiphertextBlob=dkw["CiphertextBlob"])
    try:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"purpose": "other"})
        wrong_context = "no error"
    except ClientError as err:
        wrong_context = err.response["Error"]["Code"]
    try:
        kms.enable_key_rotation(KeyId=key["KeyId"])
        rotation = "no error"
    except ClientError as err:
        rotation = err.response["Error"]["Code"]
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    print(json.dumps({
        "store": {
            k: store[k]
            for k in ("CustomKeyStoreId", "ConnectionState", "CloudHsmClusterId", "XksProxyConfiguration")
            if k in store
        },
        "keyId": key["KeyId"],
        "origin": described["Origin"],
        "keyState": described["KeyState"],
        "customKeyStoreId": described.get("CustomKeyStoreId"),
        "cloudHsmClusterId": described.get("CloudHsmClusterId"),
        "xksKeyConfiguration": described.get("XksKeyConfiguration"),
        "roundTrip": dec["Plaintext"] == plaintext,
        "reEncrypted": re_dec["Plaintext"] == plaintext and re["SourceKeyId"] == key["Arn"],
        "dataKey": dk_dec["Plaintext"] == dk["Plaintext"] and len(dk["Plaintext"]) == 32,
        "dataKeyWithoutPlaintext": len(dkw_dec["Plaintext"]) == 16,
        "wrongContext": wrong_context,
        "rotation": rotation,
        "ciphertextB64": base64.b64encode(enc["CiphertextBlob"]).decode(),
    }))


if __name__ == "__main__":
    {
        "roundtrip": roundtrip,
        "decrypt": decrypt,
        "error": error,
        "hsm-key": store_key,
        "xks-key": lambda store_id, xks_key_id: store_key(store_id, "EXTERNAL_KEY_STORE", xks_key_id),
    }[sys.argv[1]](*sys.argv[2:])
