"""Datasets through the real handlers on moto: create (presigned POST) → upload → S3 notification →
validate_dataset → READY or INVALID → a backtest that names it → list, delete, and another caller's view."""

from __future__ import annotations

from typing import Any

import pytest

from backtest_engine.csv_data import read_csv_bars
from backtest_engine.engine import run_backtest
from backtest_engine.models import BacktestRequest
from backtest_service import dataset_validation
from backtest_service.topology import DATASET_DATA_PREFIX, DATASET_MAX_BYTES, DATASETS_PREFIX
from local.stack import LocalStack
from tests.dataset_support import DATASETS, ohlcv_csv, ohlcv_parquet, policy, upload
from tests.support import SMA_CROSS, Api

pytestmark = pytest.mark.xdist_group("integration")


def create(api: Api, user: str = "alice", **body: Any) -> dict[str, Any]:
    res = api.call("POST", DATASETS, body={"name": "my bars", **body}, user=user)
    assert res.status == 201, res.body
    return dict(res.body)


def ready(api: Api, stack: LocalStack, data: bytes, user: str = "alice", **body: Any) -> dict[str, Any]:
    created = create(api, user, **body)
    assert upload(created, data).status_code == 204
    stack.deliver_uploads()
    dataset = api.call("GET", created["dataset_url"], user=user).body
    assert dataset["status"] == "READY", dataset
    return dict(dataset)


def keys(stack: LocalStack) -> list[str]:
    return stack.result_keys(DATASETS_PREFIX)


def run(api: Api, stack: LocalStack, user: str = "alice", **fields: Any) -> dict[str, Any]:
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, **fields}, user=user)
    assert res.status == 202, res.body
    stack.drain_queue()
    return dict(api.status(res.body["execution_id"], user=user).body)


def test_create_answers_a_presigned_post_limited_in_size_type_and_encryption(api: Api) -> None:
    created = create(api, format="csv")
    assert created["status"] == "PENDING"
    assert created["max_bytes"] == DATASET_MAX_BYTES == 100 * 1024 * 1024
    assert created["expires_in"] == 900
    conditions = policy(created)["conditions"]
    assert ["content-length-range", 1, DATASET_MAX_BYTES] in conditions
    assert {"Content-Type": "text/csv"} in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert created["upload_fields"]["key"].endswith(created["dataset_id"])
    dataset = api.call("GET", created["dataset_url"]).body
    assert (dataset["status"], dataset["stats"], dataset["format"]) == ("PENDING", None, "csv")


def test_an_uploaded_csv_becomes_ready_and_backtests_like_backtest_run_data(api: Api, stack: LocalStack) -> None:
    # Given a CSV uploaded through the presigned POST and validated once
    data = ohlcv_csv()
    dataset = ready(api, stack, data)
    stats = dataset["stats"]
    assert (stats["rows"], stats["timeframe"], stats["calendar"], stats["periods_per_year"]) == (480, "1h", "24/7", 365)
    assert stats["first_time"] == "2024-01-01T00:00:00+00:00" and stats["bytes"] == len(data)
    # the raw upload was read once and removed; the validated copy stays, encrypted
    (copy,) = keys(stack)
    assert copy == f"{DATASET_DATA_PREFIX}{dataset['dataset_id']}.npz"
    head = stack.client("s3").head_object(Bucket=stack.resources.results_bucket, Key=copy)
    assert head["ServerSideEncryption"] == "AES256"

    # When a backtest names it
    job = run(api, stack, dataset_id=dataset["dataset_id"], commission=0.001, slippage=0.0005)

    # Then it runs on the dataset's bars, exactly as `backtest run --data` on the same file does
    assert job["status"] == "SUCCEEDED", job
    assert (job["symbol"], job["timeframe"], job["start_date"], job["end_date"]) == (
        "CUSTOM",
        "1h",
        "2024-01-01",
        "2024-01-20",
    )
    local = run_backtest(
        BacktestRequest.model_validate({"strategy_code": SMA_CROSS, "symbol": "CUSTOM"}, context={"custom_data": True}),
        bars=read_csv_bars(data),
    )
    assert job["performance_metrics"] == pytest.approx(local.performance_metrics)
    assert job["market_data_stats"]["data_points"] == 480
    record = stack.job(job["execution_id"])
    assert record is not None and record["data_fingerprint"] == local.data_fingerprint == stats["fingerprint"]


def test_a_backtest_picks_days_and_a_coarser_timeframe_of_the_dataset(api: Api, stack: LocalStack) -> None:
    dataset = ready(api, stack, ohlcv_csv())
    job = run(
        api, stack, dataset_id=dataset["dataset_id"], timeframe="4h", start_date="2024-01-05", end_date="2024-01-14"
    )
    assert job["status"] == "SUCCEEDED", job
    assert job["market_data_stats"]["data_points"] == 10 * 6
    assert job["market_data_stats"]["date_range"]["start"] == "2024-01-05T00:00:00+00:00"


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"timeframe": "15m"}, "timeframe", "holds 1h bars, which cannot make 15m bars"),
        ({"start_date": "2023-01-01", "end_date": "2023-02-01"}, "start_date", "holds no bar"),
        ({"symbol": "AAPL"}, "dataset_id", "give symbol or dataset_id, not both"),
    ],
)
def test_a_request_the_dataset_cannot_serve_is_a_422_naming_the_field(
    api: Api, stack: LocalStack, fields: dict[str, Any], field: str, needle: str
) -> None:
    dataset = ready(api, stack, ohlcv_csv())
    res = api.call(
        "POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, "dataset_id": dataset["dataset_id"], **fields}
    )
    assert res.status == 422, res.body
    assert res.error["field"] == field and needle in res.error["message"]


def test_a_parquet_dataset_becomes_ready_with_the_same_bars(api: Api, stack: LocalStack) -> None:
    from_csv = ready(api, stack, ohlcv_csv())
    from_parquet = ready(api, stack, ohlcv_parquet(), format="parquet")
    assert from_parquet["stats"]["fingerprint"] == from_csv["stats"]["fingerprint"]


@pytest.mark.parametrize(
    ("data", "line", "needle"),
    [
        (
            b"time,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n2024-01-03,1,abc,1,1,1\n",
            3,
            "'abc' is not a number",
        ),
        (b"time,open,high,low,close\n2024-01-02,1,1,1,1\n", 1, "missing column volume"),
        (b"time;open;high;low;close;volume\n2024-01-02;1;1;1;1;1\n", 1, "seems to use ';'"),
        (b"", None, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" * 10, None, "not text"),
        (
            b"time,open,high,low,close,volume\n2024-01-02T14:30Z,1,1,1,1,1\n2024-01-02T14:30Z,1,1,1,1,1\n",
            3,
            "duplicate time",
        ),
    ],
)
def test_a_bad_file_ends_invalid_with_the_line_and_column(
    api: Api, stack: LocalStack, data: bytes, line: int | None, needle: str
) -> None:
    created = create(api)
    upload(created, data)
    stack.deliver_uploads()
    dataset = api.call("GET", created["dataset_url"]).body
    assert dataset["status"] == "INVALID"
    assert dataset["error"]["type"] == "InvalidMarketData"
    assert needle in dataset["error"]["message"]
    assert dataset["error"].get("line") == line
    assert keys(stack) == []  # nothing of an invalid upload is kept
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, "dataset_id": created["dataset_id"]})
    assert res.status == 422 and res.error["field"] == "dataset_id" and "INVALID" in res.error["message"]


def test_an_upload_over_the_limit_is_invalid_even_where_s3_does_not_enforce_the_policy(
    api: Api, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset_validation, "DATASET_MAX_BYTES", 100)
    created = create(api)
    upload(created, ohlcv_csv())
    stack.deliver_uploads()
    dataset = api.call("GET", created["dataset_url"]).body
    assert dataset["status"] == "INVALID" and dataset["error"]["type"] == "DatasetTooLarge"


def test_a_pending_dataset_cannot_be_used_yet(api: Api) -> None:
    created = create(api)
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, "dataset_id": created["dataset_id"]})
    assert res.status == 422 and res.error["field"] == "dataset_id" and "PENDING" in res.error["message"]


def test_another_caller_can_neither_see_nor_use_nor_delete_it(api: Api, stack: LocalStack) -> None:
    dataset = ready(api, stack, ohlcv_csv())
    path = f"{DATASETS}/{dataset['dataset_id']}"
    assert api.call("GET", path, user="mallory").status == 404
    assert api.call("DELETE", path, user="mallory").status == 404
    assert api.call("GET", DATASETS, user="mallory").body["datasets"] == []
    res = api.call(
        "POST",
        "/api/backtest/run",
        body={"strategy_code": SMA_CROSS, "dataset_id": dataset["dataset_id"]},
        user="mallory",
    )
    assert res.status == 422 and res.error["field"] == "dataset_id"
    assert api.call("GET", path).status == 200  # still alice's


def test_list_and_delete(api: Api, stack: LocalStack) -> None:
    first = ready(api, stack, ohlcv_csv())
    second = create(api, name="later")
    listed = api.call("GET", DATASETS).body["datasets"]
    assert [d["dataset_id"] for d in listed] == [second["dataset_id"], first["dataset_id"]]
    assert listed[1]["rows"] == 480 and listed[0]["status"] == "PENDING"

    res = api.call("DELETE", f"{DATASETS}/{first['dataset_id']}")
    assert res.status == 200 and res.body == {"success": True, "dataset_id": first["dataset_id"], "deleted": True}
    assert api.call("GET", f"{DATASETS}/{first['dataset_id']}").status == 404
    assert keys(stack) == []
    assert api.call("GET", f"{DATASETS}/not a valid id!").status == 404


def test_a_dataset_deleted_while_its_backtest_is_queued_fails_the_job_clearly(api: Api, stack: LocalStack) -> None:
    dataset = ready(api, stack, ohlcv_csv())
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, "dataset_id": dataset["dataset_id"]})
    assert res.status == 202
    assert api.call("DELETE", f"{DATASETS}/{dataset['dataset_id']}").status == 200
    stack.drain_queue()
    job = api.status(res.body["execution_id"]).body
    assert job["status"] == "FAILED" and job["attempts"] == 1  # not retried: it would fail the same way
    assert job["error"]["type"] == "DatasetUnavailable" and "deleted" in job["error"]["message"]


def test_an_upload_for_a_deleted_dataset_leaves_nothing(api: Api, stack: LocalStack) -> None:
    created = create(api)
    assert api.call("DELETE", created["dataset_url"]).status == 200
    upload(created, ohlcv_csv())  # the policy is still valid: S3 takes the file
    stack.deliver_uploads()
    assert keys(stack) == []


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "x", "format": "xlsx"}, {"name": "x", "lot_size": 0}, {"name": "x", "calendar": "lunar"}],
)
def test_bad_create_bodies_are_422(api: Api, body: dict[str, Any]) -> None:
    res = api.call("POST", DATASETS, body=body)
    assert res.status == 422, res.body


def test_a_storage_fault_while_validating_is_retried_and_leaves_nothing_half_written(
    api: Api, stack: LocalStack
) -> None:
    # Given the validated copy's write fails once (S3 unavailable)
    created = create(api)
    upload(created, ohlcv_csv())
    with stack.inject_fault("s3", "PutObject", times=1) as failed:
        # When S3's notification is delivered (Lambda retries an asynchronous invocation twice)
        stack.deliver_uploads()
    # Then the retry made it READY, with one copy
    assert failed == ["PutObject"]
    dataset = api.call("GET", created["dataset_url"]).body
    assert dataset["status"] == "READY"
    assert keys(stack) == [f"{DATASET_DATA_PREFIX}{created['dataset_id']}.npz"]


def test_a_table_fault_on_create_is_a_503_and_stores_nothing(api: Api, stack: LocalStack) -> None:
    with stack.inject_fault("dynamodb", "PutItem"):
        res = api.call("POST", DATASETS, body={"name": "x"})
    assert res.status == 503 and res.headers.get("Retry-After") == "5"
    assert api.call("GET", DATASETS).body["datasets"] == []


def test_a_next_token_not_made_by_the_api_is_a_400(api: Api) -> None:
    res = api.call("GET", DATASETS, query={"next_token": "bm90LWEtdG9rZW4"})
    assert res.status == 400 and res.error["type"] == "InvalidNextToken"


def test_validate_checks_a_dataset_request_as_submit_does(api: Api, stack: LocalStack) -> None:
    dataset = ready(api, stack, ohlcv_csv())
    body = {"strategy_code": SMA_CROSS, "dataset_id": dataset["dataset_id"]}
    ok = api.call("POST", "/api/backtest/validate", body=body)
    assert ok.status == 200, ok.body
    assert ok.body["estimated_bars"] == 480
    refused = api.call("POST", "/api/backtest/validate", body=body, user="mallory")
    assert refused.status == 422 and refused.error["field"] == "dataset_id"
