"""DynamoDB TTL and S3 lifecycle expiration for the embedded AWS: moto stores both settings but never acts
on them, so a long `backtest local` session would keep every job, idempotency record and result object it
ever made (about 160 KB per job of an hourly quarter here: bench/local_server_memory.py).

    expiry = Expiry(region)          # boto3 clients of whatever AWS the environment points at (moto)
    expiry.sweep()                   # once: Swept(items=..., objects=...)
    expiry.start(interval_seconds=60); ...; expiry.stop()   # every minute, in a daemon thread

What AWS does, and so does this, for every table and bucket it finds (nothing here knows the service):

- a table whose TTL is enabled loses each item whose TTL attribute is a number of epoch seconds in the
  past (AWS deletes within a few days of that moment, usually within minutes; non-numbers are ignored);
- a bucket's enabled lifecycle rules with `Expiration.Days` delete each object under the rule's prefix
  once it is that many days old (AWS rounds to the next midnight UTC; this does not).

`clock` (epoch seconds) is the tests' seam: move it on to make a month pass.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("backtest.local")
DEFAULT_INTERVAL_SECONDS = 60.0
_BATCH = 25  # BatchWriteItem's maximum


@dataclass(frozen=True)
class Swept:
    items: int = 0
    objects: int = 0


def release_freed_memory() -> None:
    """Hand the heap pages freed objects leave behind back to the system (glibc's malloc_trim; elsewhere
    nothing). A threaded server spreads its allocations over one malloc arena per thread, and glibc keeps
    what is freed in them: without this, RSS would not come down after a sweep even though the memory is
    free, and fragments of it would keep the next allocations from fitting."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


class Expiry:
    def __init__(self, region: str, *, clock: Callable[[], float] = time.time) -> None:
        self.region = region
        self.clock = clock
        self._clients: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one sweep at a time (the thread and a caller's sweep())

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.session.Session(region_name=self.region).client(service)  # type: ignore[call-overload]
        return self._clients[service]

    # ---- one sweep ---------------------------------------------------------------------------------------

    def sweep(self) -> Swept:
        """Delete what has expired by `clock()`; returns how many items and objects went."""
        with self._lock:
            now = self.clock()
            swept = Swept(items=self._expire_items(now), objects=self._expire_objects(now))
        if swept.items or swept.objects:
            release_freed_memory()
        return swept

    def _expire_items(self, now: float) -> int:
        dynamodb = self._client("dynamodb")
        deleted = 0
        for page in dynamodb.get_paginator("list_tables").paginate():
            for table in page["TableNames"]:
                ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
                if ttl.get("TimeToLiveStatus") != "ENABLED" or not ttl.get("AttributeName"):
                    continue
                keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
                names = {f"#k{i}": key for i, key in enumerate(keys)} | {"#ttl": ttl["AttributeName"]}
                expired = [
                    item
                    for scanned in dynamodb.get_paginator("scan").paginate(
                        TableName=table,
                        FilterExpression="#ttl < :now",
                        ProjectionExpression=", ".join(n for n in names if n != "#ttl"),
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues={":now": {"N": str(int(now))}},
                    )
                    for item in scanned["Items"]
                ]
                for start in range(0, len(expired), _BATCH):
                    batch = [{"DeleteRequest": {"Key": key}} for key in expired[start : start + _BATCH]]
                    dynamodb.batch_write_item(RequestItems={table: batch})
                deleted += len(expired)
        return deleted

    def _expire_objects(self, now: float) -> int:
        from botocore.exceptions import ClientError

        s3 = self._client("s3")
        deleted = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            try:
                rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
                    continue
                raise
            for rule in rules:
                days = rule.get("Expiration", {}).get("Days")
                if rule.get("Status") != "Enabled" or not days:
                    continue
                prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
                cutoff = datetime.fromtimestamp(now - days * 86400, tz=UTC)
                expired = [
                    {"Key": obj["Key"]}
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
                    for obj in page.get("Contents", [])
                    if obj["LastModified"] <= cutoff
                ]
                for start in range(0, len(expired), 1000):  # DeleteObjects' maximum
                    s3.delete_objects(Bucket=name, Delete={"Objects": expired[start : start + 1000], "Quiet": True})
                deleted += len(expired)
        return deleted

    # ---- in the background -------------------------------------------------------------------------------

    def start(self, interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> Expiry:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, args=(interval_seconds,), name="backtest-expiry", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self, interval_seconds: float) -> None:
        while not self._stopping.wait(interval_seconds):
            with contextlib.suppress(Exception):  # moto stopping under us; the next sweep tries again
                swept = self.sweep()
                if swept.items or swept.objects:
                    log.info("expired %d items and %d objects", swept.items, swept.objects)
