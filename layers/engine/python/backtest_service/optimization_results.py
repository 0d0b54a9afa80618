"""An optimization's objects in S3, under `topology.OPTIMIZATIONS_PREFIX + <optimization id>/`, each gzip-encoded
(`Content-Encoding: gzip`: browsers and HTTP clients decompress the presigned downloads by themselves):

- ``chunk-00042.json``: chunk 42's results (every combination's outcome on the whole range and, with
  validation, on each fold's in-sample part); the key depends only on the optimization and the chunk, so a
  rerun (a redelivery, a replay) overwrites it. A chunk that continues in a new invocation stores its
  checkpoint there (``complete: false``).
- ``combinations.json`` and ``combinations.csv``: the full table, every combination's parameters and
  metrics (or its error), written by the aggregation (again: a rerun overwrites them).

The bucket's lifecycle rule for the prefix expires them on the jobs' schedule (`topology.RESULTS_BUCKET`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from backtest_service import clients
from backtest_service.result_store import gzip_chunks
from backtest_service.settings import get_settings
from backtest_service.topology import OPTIMIZATIONS_PREFIX, RESULTS_URL_TTL_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
TABLE_JSON = "combinations.json"
TABLE_CSV = "combinations.csv"


def prefix(optimization_id: str) -> str:
    return f"{OPTIMIZATIONS_PREFIX}{optimization_id}/"


def chunk_key(optimization_id: str, chunk: int) -> str:
    return f"{prefix(optimization_id)}chunk-{chunk:05d}.json"


def table_key(optimization_id: str, name: str) -> str:
    return f"{prefix(optimization_id)}{name}"


class OptimizationResults:
    def __init__(
        self, bucket: str, client: S3Client | None = None, *, url_ttl_seconds: int = RESULTS_URL_TTL_SECONDS
    ) -> None:
        self.bucket = bucket
        self.url_ttl_seconds = url_ttl_seconds
        self._client = client

    @property
    def client(self) -> S3Client:
        return self._client or clients.s3()

    def _put(self, key: str, chunks: Iterable[bytes], content_type: str, optimization_id: str) -> str:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=b"".join(gzip_chunks(chunks)),
            ContentType=content_type,
            ContentEncoding="gzip",
            Metadata={"optimization-id": optimization_id},
        )
        return key

    def put_chunk(self, optimization_id: str, chunk: int, document: dict[str, Any]) -> str:
        body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
        return self._put(chunk_key(optimization_id, chunk), [body], JSON, optimization_id)

    def get_chunk(self, optimization_id: str, chunk: int) -> dict[str, Any] | None:
        """Chunk `chunk`'s stored results (complete or a checkpoint), None when there are none."""
        try:
            out = self.client.get_object(Bucket=self.bucket, Key=chunk_key(optimization_id, chunk))
        except self.client.exceptions.NoSuchKey:
            return None
        data: dict[str, Any] = json.loads(gzip.decompress(out["Body"].read()))
        return data

    def put_table(
        self, optimization_id: str, json_chunks: Iterable[bytes], csv_chunks: Iterable[bytes]
    ) -> tuple[str, str]:
        """The full table, as JSON and as CSV; their keys."""
        return (
            self._put(table_key(optimization_id, TABLE_JSON), json_chunks, JSON, optimization_id),
            self._put(table_key(optimization_id, TABLE_CSV), csv_chunks, CSV, optimization_id),
        )

    def get_table(self, optimization_id: str) -> dict[str, Any]:
        out = self.client.get_object(Bucket=self.bucket, Key=table_key(optimization_id, TABLE_JSON))
        data: dict[str, Any] = json.loads(gzip.decompress(out["Body"].read()))
        return data

    def keys(self, optimization_id: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix(optimization_id))
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def delete_table(self, optimization_id: str) -> None:
        keys = [table_key(optimization_id, name) for name in (TABLE_JSON, TABLE_CSV)]
        self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})

    def presigned_url(self, key: str) -> str:
        """A GET URL valid for `url_ttl_seconds` (signed locally), serving the key's content type."""
        content_type = CSV if key.endswith(".csv") else JSON
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": content_type},
            ExpiresIn=self.url_ttl_seconds,
        )


@cache
def default_optimization_results() -> OptimizationResults:
    settings = get_settings()
    return OptimizationResults(settings.results_bucket, url_ttl_seconds=settings.results_url_ttl_seconds)
