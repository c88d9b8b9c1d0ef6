"""Invokes a Lambda function N times through the Lambda API, a few at a time, as callers would.

usage: invoke_many.py FUNCTION QUALIFIER N THREADS PAYLOAD_FILE
Prints one JSON line per invoke: {"status": <the envelope's statusCode>, "body": <decoded body>, "error": …}.
Uses botocore (awscli's own client) against AWS_ENDPOINT_URL.
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import botocore.config
import botocore.session

function, qualifier, n, threads, payload_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
payload = open(payload_file, "rb").read()
session = botocore.session.get_session()
client = session.create_client(
    "lambda",
    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    config=botocore.config.Config(read_timeout=300, retries={"max_attempts": 0}, max_pool_connections=threads),
)


def one(_):
    out = client.invoke(FunctionName=function, Qualifier=qualifier, Payload=payload)
    answer = json.loads(out["Payload"].read() or b"null")
    body = answer.get("body") if isinstance(answer, dict) else None
    return {
        "status": answer.get("statusCode") if isinstance(answer, dict) else None,
        "body": json.loads(body) if isinstance(body, str) else body,
        "error": out.get("FunctionError"),
    }


with ThreadPoolExecutor(threads) as pool:
    for result in pool.map(one, range(n)):
        print(json.dumps(result))
