"""POST /api/backtest/run through the real submit handler on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from backtest_service.topology import API_PREFIX
from local.stack import LocalStack
from tests.support import SMA_CROSS, SMALL_RUN, Api, in_jobs_queue

pytestmark = pytest.mark.xdist_group("integration")

RUN = f"{API_PREFIX}/run"


def test_submit_stores_a_queued_job_and_queues_only_its_id(api: Api, stack: LocalStack) -> None:
    # Given a valid request, When it is submitted
    res = api.submit(name="sma 5/20", parameters={"fast": 5, "slow": 20}, headers={"Origin": "https://app.example.com"})

    # Then 202 with the id and where to poll: an absolute URL, also the Location header
    assert res.status == 202, res.body
    execution_id = res.body["execution_id"]
    assert res.body == {
        "success": True,
        "execution_id": execution_id,
        "status": "QUEUED",
        "status_url": f"https://127.0.0.1{API_PREFIX}/status/{execution_id}",
    }
    assert res.headers["Location"] == res.body["status_url"]
    assert res.headers["Access-Control-Allow-Origin"] == "*"  # the frontend calls from a browser (CORS)
    # And the job is stored QUEUED for its owner, with the request, a TTL and no attempt yet
    job = stack.job(execution_id)
    assert job is not None
    assert job["status"] == "QUEUED"
    assert job["owner"] == "cognito:alice"
    assert job["attempts"] == 0
    assert job["name"] == "sma 5/20"
    assert job["request"]["strategy_code"] == SMA_CROSS
    assert job["request"]["parameters"] == {"fast": 5, "slow": 20}
    assert job["created_at"].endswith("Z")
    assert job["expires_at"] > 0
    # And the queue holds one message carrying only the id
    sqs = stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.resources.jobs_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"execution_id": execution_id}]


@pytest.mark.parametrize(
    ("fields", "field", "phrase"),
    [
        ({"symbol": "NOPE"}, "symbol", "unknown symbol 'NOPE'; available: AAPL"),
        ({"timeframe": "2h"}, "timeframe", "'1m', '5m', '15m', '1h', '4h' or '1d'"),
        (
            {"start_date": "2024-02-01", "end_date": "2024-01-01"},
            "end_date",
            "end_date 2024-01-01 is before start_date",
        ),
        (
            {"start_date": "2010-01-01", "end_date": "2010-02-01"},
            "start_date",
            "outside the available history 2018-01-01",
        ),
        (  # a weekend: AAPL has no session, so no bar
            {"start_date": "2024-01-06", "end_date": "2024-01-07"},
            "start_date",
            "has 0 bar(s); a backtest needs at least 2",
        ),
        (
            {"symbol": "BTCUSD", "timeframe": "1m", "start_date": "2018-01-01", "end_date": "2025-12-31"},
            "end_date",
            "the limit is 2,000,000",
        ),
        ({"initial_capital": -5}, "initial_capital", "greater than 0"),
        ({"commission": 0.5}, "commission", "less than or equal to 0.1"),
        ({"unexpected": 1}, "unexpected", "Extra inputs are not permitted"),
        ({"start_date": "yesterday"}, "start_date", "valid date"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    api: Api, stack: LocalStack, fields: dict[str, Any], field: str | None, phrase: str
) -> None:
    res = api.submit(**fields)
    assert res.status == 422, res.body
    error = res.error
    assert error["type"] == "ValidationError"
    assert phrase in error["message"]
    assert error.get("field") == field
    # And one entry per bad field, for a form to show beside it
    assert [e["field"] for e in res.body["errors"]] == [field]
    assert phrase in res.body["errors"][0]["message"]
    assert len(stack.job_items()) == 0


def test_more_bars_than_the_cap_is_422_with_the_numbers(api: Api, stack: LocalStack) -> None:
    # 1m bars of a 24/7 symbol over 2018..2025 is about 4.2 million bars, over the 2,000,000 cap
    res = api.submit(symbol="BTCUSD", timeframe="1m", start_date="2018-01-01", end_date="2025-12-31")
    assert res.status == 422
    assert "the limit is 2,000,000" in res.error["message"]
    assert "shorten the range or use a longer timeframe" in res.error["message"]


def test_bar_cap_follows_the_max_bars_setting(api: Api, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployment capped at 100 bars (a month of 1h AAPL bars is about 160)
    from backtest_service import settings, submission

    monkeypatch.setenv("MAX_BARS", "100")
    settings.get_settings.cache_clear()
    submission.default_deps.cache_clear()
    res = api.submit()
    assert res.status == 422
    assert "the limit is 100" in res.error["message"]


def test_code_over_64_kib_is_413(api: Api, stack: LocalStack) -> None:
    code = SMA_CROSS + "\n# " + "x" * (64 * 1024) + "\n"
    res = api.submit(strategy_code=code)
    assert res.status == 413
    assert res.error["type"] == "PayloadTooLarge"
    assert res.error["field"] == "strategy_code"
    assert "the limit is 65,536 bytes" in res.error["message"]
    assert len(stack.job_items()) == 0


def test_a_body_that_is_not_json_is_400(api: Api, stack: LocalStack) -> None:
    res = api.call("POST", RUN, raw_body="{strategy_code: nope")
    assert res.status == 400
    assert res.error["type"] == "InvalidJSON"
    assert "not valid JSON" in res.error["message"]


def test_a_body_that_is_not_declared_json_is_415(api: Api, stack: LocalStack) -> None:
    res = api.call("POST", RUN, body={"strategy_code": SMA_CROSS}, headers={"Content-Type": "text/plain"})
    assert res.status == 415
    assert res.error["type"] == "UnsupportedContentType"
    assert len(stack.job_items()) == 0


def test_missing_strategy_code_is_422(api: Api) -> None:
    res = api.call("POST", RUN, body={"symbol": "AAPL"})
    assert res.status == 422
    assert res.error["field"] == "strategy_code"
    assert "Field required" in res.error["message"]


def test_a_syntax_error_is_400_with_its_line(api: Api, stack: LocalStack) -> None:
    code = "import numpy as np\n\ndef generate_signals(data, params)\n    return np.ones(len(data))\n"
    res = api.submit(strategy_code=code)
    assert res.status == 400
    assert res.error["type"] == "StrategyCompileError"
    assert res.error["line"] == 3
    assert len(stack.job_items()) == 0


def test_a_forbidden_import_is_400_with_its_line_and_what_is_allowed(api: Api, stack: LocalStack) -> None:
    code = "\n".join(
        [
            "import numpy as np",
            "import os",
            "",
            "def generate_signals(data, params):",
            "    return np.ones(len(data))",
        ]
    )
    res = api.submit(strategy_code=code)
    assert res.status == 400
    assert res.error["type"] == "StrategyCompileError"
    assert res.error["line"] == 2
    assert "numpy" in res.error["message"]
    assert len(stack.job_items()) == 0


def test_no_authenticated_caller_is_401(api: Api, stack: LocalStack) -> None:
    res = api.call("POST", RUN, body={"strategy_code": SMA_CROSS, **SMALL_RUN}, user=None)
    assert res.status == 401
    assert res.error["type"] == "Unauthorized"
    assert len(stack.job_items()) == 0


def test_idempotency_key_returns_the_first_answer_and_creates_one_job(api: Api, stack: LocalStack) -> None:
    # Given a submit with an Idempotency-Key
    first = api.submit(headers={"Idempotency-Key": "order-1"})
    assert first.status == 202
    # When the client retries with the same key and body
    again = api.submit(headers={"idempotency-key": "order-1"})  # header names are case-insensitive
    # Then it gets the same answer, and there is one job and one message
    assert again.status == 202
    assert again.body == first.body
    assert len(stack.job_items()) == 1
    assert in_jobs_queue(stack) == 1
    # And a different key is a different job
    other = api.submit(headers={"Idempotency-Key": "order-2"})
    assert other.status == 202
    assert other.body["execution_id"] != first.body["execution_id"]
    # And the same key from another caller is that caller's own job
    bob = api.submit(user="bob", headers={"Idempotency-Key": "order-1"})
    assert bob.body["execution_id"] not in (first.body["execution_id"], other.body["execution_id"])
    # And without a key every submit is new
    plain_1, plain_2 = api.submit(), api.submit()
    assert plain_1.body["execution_id"] != plain_2.body["execution_id"]
    assert len(stack.job_items()) == 5


def test_idempotency_key_reused_with_another_body_is_422(api: Api, stack: LocalStack) -> None:
    assert api.submit(headers={"Idempotency-Key": "k"}).status == 202
    res = api.submit(headers={"Idempotency-Key": "k"}, symbol="MSFT")
    assert res.status == 422
    assert res.error["type"] == "IdempotencyKeyReused"
    assert len(stack.job_items()) == 1


def test_queue_unavailable_is_503_and_leaves_no_queued_job(api: Api, stack: LocalStack, inject_fault: Any) -> None:
    # Given SQS refuses the message
    with inject_fault("sqs", "SendMessage") as calls:
        res = api.submit(headers={"Idempotency-Key": "retry-me"})
    assert calls == ["SendMessage"]
    # Then 503 with a retry message and a Retry-After
    assert res.status == 503
    assert res.error["type"] == "QueueUnavailable"
    assert "retry" in res.error["message"]
    assert res.headers.get("Retry-After") == "5"
    # And the job it stored is FAILED (QueueUnavailable), not an orphan QUEUED one
    scan = stack.client("dynamodb").scan(TableName=stack.resources.jobs_table)["Items"]
    assert [(i["status"]["S"], i["error"]["M"]["type"]["S"]) for i in scan] == [("FAILED", "QueueUnavailable")]
    # When the client retries with the same key once the queue is back
    retry = api.submit(headers={"Idempotency-Key": "retry-me"})
    # Then the retry is not answered from the failed attempt: a new job is queued
    assert retry.status == 202
    job = stack.job(retry.body["execution_id"])
    assert job is not None and job["status"] == "QUEUED"
    assert in_jobs_queue(stack) == 1


def test_table_unavailable_is_503_json_and_logged_with_the_request_id(
    api: Api, stack: LocalStack, inject_fault: Any, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    with inject_fault("dynamodb", "PutItem", code="ProvisionedThroughputExceededException"):
        res = api.submit()
    assert res.status == 503
    assert res.error["type"] == "ServiceUnavailable"
    assert res.headers.get("Retry-After") == "5"
    assert len(stack.job_items()) == 0
    assert in_jobs_queue(stack) == 0
    # The error is logged with API Gateway's request id as correlation id, and the job's id
    [entry] = [e for e in log_records() if e["message"] == "AWS call failed"]
    assert entry["correlation_id"] == res.request_id
    assert entry["execution_id"]
    assert "ProvisionedThroughputExceededException" in entry["exception"]


def test_unknown_route_is_a_json_404(api: Api) -> None:
    res = api.call("POST", f"{API_PREFIX}/run/extra", body={})
    assert res.status == 404
    assert res.error["type"] == "RouteNotFound"
