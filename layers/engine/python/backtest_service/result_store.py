"""Full results in S3 at `RESULTS_PREFIX + execution_id + ".json"`.

The key depends only on the execution id, so a redelivered or replayed run overwrites the same
object instead of adding a second one. Callers fetch results through a presigned GET URL: API
Gateway answers are capped at 10 MB and 29 s, a result with every trade and bar may not fit.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from backtest_service import clients
from backtest_service.settings import get_settings
from backtest_service.topology import RESULTS_PREFIX, RESULTS_URL_TTL_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def result_key(execution_id: str) -> str:
    return f"{RESULTS_PREFIX}{execution_id}.json"


class ResultStore:
    def __init__(
        self, bucket: str, client: S3Client | None = None, *, url_ttl_seconds: int = RESULTS_URL_TTL_SECONDS
    ) -> None:
        self.bucket = bucket
        self.url_ttl_seconds = url_ttl_seconds
        self._client = client

    @property
    def client(self) -> S3Client:
        return self._client or clients.s3()

    def put(self, execution_id: str, body: str | bytes) -> str:
        """Write the result JSON (overwriting any earlier attempt's); its key."""
        key = result_key(execution_id)
        data = body.encode() if isinstance(body, str) else body
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType="application/json",
            Metadata={"execution-id": execution_id},
        )
        return key

    def get(self, key: str) -> dict[str, Any]:
        out = self.client.get_object(Bucket=self.bucket, Key=key)
        data: dict[str, Any] = json.loads(out["Body"].read())
        return data

    def presigned_url(self, key: str) -> str:
        """A GET URL valid for `url_ttl_seconds` (signing is local: no call to S3)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": "application/json"},
            ExpiresIn=self.url_ttl_seconds,
        )


@cache
def default_result_store() -> ResultStore:
    settings = get_settings()
    return ResultStore(settings.results_bucket, url_ttl_seconds=settings.results_url_ttl_seconds)
