"""The report beside the result in S3 (moto): gzip-encoded HTML under the result's prefix, presigned as HTML."""

from __future__ import annotations

import gzip
import urllib.parse

from moto import mock_aws

from backtest_service.result_store import ResultStore, report_key, result_key
from backtest_service.topology import RESULTS_PREFIX
from local.embedded_aws import fake_session

REGION = "us-east-1"


def test_the_report_is_stored_beside_the_result_and_presigned_as_html() -> None:
    with mock_aws():
        s3 = fake_session(REGION).client("s3")
        s3.create_bucket(Bucket="results")
        store = ResultStore("results", s3)
        page = "<!DOCTYPE html><html><body>é</body></html>"
        key = store.put_report("job-1", page)
        assert key == report_key("job-1") == f"{RESULTS_PREFIX}job-1.report.html"
        assert key.removesuffix(".report.html") == result_key("job-1").removesuffix(".json")
        stored = s3.get_object(Bucket="results", Key=key)
        assert stored["ContentEncoding"] == "gzip" and stored["ContentType"] == "text/html; charset=utf-8"
        assert gzip.decompress(stored["Body"].read()).decode("utf-8") == page
        report_url = urllib.parse.parse_qs(urllib.parse.urlsplit(store.presigned_url(key)).query)
        assert report_url["response-content-type"] == ["text/html; charset=utf-8"]
        result_url = urllib.parse.parse_qs(urllib.parse.urlsplit(store.presigned_url(result_key("job-1"))).query)
        assert result_url["response-content-type"] == ["application/json"]
