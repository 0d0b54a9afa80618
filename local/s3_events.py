"""S3 event notifications to Lambda, locally: what invokes validate_dataset when a dataset's file is uploaded.

moto stores the bucket's notification configuration (`LambdaFunctionConfigurations`, created from
`topology`'s `BucketNotification`s by `local/aws_resources.py`) but cannot invoke a function. This plays
that part through the local runtime, as `local/event_source.py` plays the SQS event source mapping: `poll`
lists each configured prefix, and every object it has not delivered yet (new key, or a new ETag: an
overwrite) goes to the named function as the event S3 sends (`Records[].eventName` `ObjectCreated:Post`,
bucket, key URL-encoded, size, ETag). S3 invokes asynchronously and Lambda retries a failed invocation
twice; so does this (on the next polls), then it logs and gives up, as Lambda drops the event.

Not emulated: S3's enforcement of a presigned POST's policy (content-length-range, Content-Type): moto
accepts any upload; validate_dataset checks the size again, so an oversized file still ends INVALID.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from local.embedded_aws import ACCOUNT_ID

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("backtest.local")
ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries


@dataclass(frozen=True)
class Target:
    """One `LambdaFunctionConfiguration` of the bucket: objects under `prefix` go to `function`."""

    function: str  # the local function's folder name (functions/<name>)
    prefix: str


def s3_record(
    bucket: str, key: str, *, size: int, etag: str, region: str, event_name: str = "ObjectCreated:Post"
) -> dict[str, Any]:
    """One record of an S3 event notification, as S3 sends it to Lambda."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": event_name,
        "userIdentity": {"principalId": f"AWS:{ACCOUNT_ID}"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "local",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": ACCOUNT_ID}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag.strip('"'),
                "sequencer": f"{time.time_ns():X}",
            },
        },
    }


class BucketNotifications:
    """The bucket's Lambda notifications, delivered by polling (several threads may poll one instance)."""

    def __init__(
        self,
        s3: S3Client,
        *,
        bucket: str,
        region: str,
        invoke: Callable[[str, Mapping[str, Any]], Any],
        function_of_arn: Callable[[str], str | None],
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.region = region
        self.invoke = invoke
        self.function_of_arn = function_of_arn
        self._delivered: dict[str, str] = {}  # key → ETag delivered (or being delivered)
        self._failures: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def targets(self) -> list[Target]:
        """The bucket's notification configuration, as moto keeps it."""
        config = self.s3.get_bucket_notification_configuration(Bucket=self.bucket)
        out = []
        for entry in config.get("LambdaFunctionConfigurations", []):
            function = self.function_of_arn(entry["LambdaFunctionArn"])
            rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            prefix = next((r["Value"] for r in rules if r["Name"].lower() == "prefix"), "")
            if function is not None and any(e.startswith("s3:ObjectCreated:") for e in entry["Events"]):
                out.append(Target(function, prefix))
        return out

    def poll(self) -> int:
        """Deliver every object created since the last poll; the number of invocations made."""
        invocations = 0
        for target in self.targets():
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=target.prefix):
                for obj in page.get("Contents", []):
                    key, etag = obj["Key"], obj.get("ETag", "")
                    with self._lock:
                        if self._delivered.get(key) == etag:
                            continue
                        self._delivered[key] = etag  # claimed: no other poller delivers it
                    record = s3_record(self.bucket, key, size=int(obj.get("Size", 0)), etag=etag, region=self.region)
                    invocations += 1
                    self._deliver(target, key, etag, {"Records": [record]})
        return invocations

    def _deliver(self, target: Target, key: str, etag: str, event: dict[str, Any]) -> None:
        try:
            self.invoke(target.function, event)
        except Exception:
            with self._lock:
                failures = self._failures.get((key, etag), 0) + 1
                self._failures[(key, etag)] = failures
                if failures < ATTEMPTS:
                    self._delivered.pop(key, None)  # retried on a later poll
            if failures < ATTEMPTS:
                log.warning(
                    "%s failed on s3://%s/%s; retried (%d of %d)", target.function, self.bucket, key, failures, ATTEMPTS
                )
            else:
                log.exception(
                    "%s failed %d times on s3://%s/%s; the event is dropped",
                    target.function,
                    ATTEMPTS,
                    self.bucket,
                    key,
                )

    def drain(self, *, timeout_seconds: float = 60.0) -> int:
        """Poll until a poll delivers nothing (retries included); the invocations made."""
        total, deadline = 0, time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            made = self.poll()
            total += made
            if not made:
                return total
        raise TimeoutError(f"uploads kept arriving for {timeout_seconds:.0f} s")
