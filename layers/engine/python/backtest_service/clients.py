"""boto3 clients, each created once per container on first use.

Region, credentials and endpoint come from the standard AWS environment (`AWS_REGION`,
`AWS_ENDPOINT_URL*`), so the same code talks to AWS in Lambda and to moto on a laptop.
`reset_clients()` drops the cached clients (tests that swap the embedded AWS call it).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# Standard retry mode: bounded exponential backoff on throttling and 5xx, then the error surfaces
# (an API call answers 503, the runner lets SQS retry the message).
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
# Presigned URLs must be SigV4 (required in every region opened after 2014, and for KMS-encrypted objects).
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.session.Session().client("dynamodb", config=_CONFIG)


@cache
def sqs() -> SQSClient:
    return boto3.session.Session().client("sqs", config=_CONFIG)


@cache
def s3() -> S3Client:
    return boto3.session.Session().client("s3", config=_S3_CONFIG)


def reset_clients() -> None:
    for factory in (dynamodb, sqs, s3):
        factory.cache_clear()
