"""Jobs a frontend can follow, stop and show, through the real handlers on the local stack: progress, cancel,
delete, rename, list filters, the curve and trade pages, `?wait=`, validation a form can use, absolute links,
and a runner Lambda killed mid-job."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from backtest_service import job_monitor
from backtest_service.jobs import STALE_AFTER_SECONDS, iso, utc_now
from backtest_service.result_store import Artifact, artifact_key, result_key
from backtest_service.routes import GET_STATUS, LIST_EXECUTIONS
from local.event_source import EventSourceMapping
from local.events import api_event
from local.stack import LocalStack
from tests.support import FLIP, FOREVER, SMA_CROSS, Api, in_jobs_queue

# Event style, slow on purpose: 1,500 loop steps a bar, so half a year of hourly BTCUSD bars takes seconds.
SLOW_EVENT = """\
def on_bar(ctx, bar):
    total = 0
    for i in range(params_steps(ctx)):
        total += i
    if total < 0:
        ctx.buy()


def params_steps(ctx):
    return ctx.params.get("steps", 1500)

"""


class Background:
    """The queue's worker delivering in a thread, as a runner Lambda beside the API."""

    def __init__(self, worker: EventSourceMapping) -> None:
        self.worker = worker
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.poll()
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def join(self, timeout: float = 120.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not finish"
        assert not self.errors, self.errors


def _wait_status(api: Api, execution_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = api.status(execution_id).body
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']}: {body}"
        time.sleep(0.05)


@pytest.fixture
def fast_progress(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Progress written every 0.2 s instead of 2 s, so a short job shows several."""
    monkeypatch.setattr(job_monitor, "PROGRESS_INTERVAL_SECONDS", 0.2)
    yield


# ---- validation a form can use -------------------------------------------------------------------------


def test_three_bad_fields_give_three_entries(api: Api) -> None:
    res = api.submit(commission=5, slippage=-1, timeframe="2m")
    assert res.status == 422
    assert sorted(e["field"] for e in res.body["errors"]) == ["commission", "slippage", "timeframe"]
    assert res.error["type"] == "ValidationError"  # the compatible single error stays


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "strategy_code=x"),
        (
            "multipart/form-data; boundary=b",
            '--b\r\nContent-Disposition: form-data; name="strategy_code"\r\n\r\nx\r\n--b--',
        ),
        ("text/plain", json.dumps({"strategy_code": SMA_CROSS})),
    ],
)
def test_a_body_that_is_not_json_is_415(api: Api, stack: LocalStack, content_type: str, body: str) -> None:
    res = api.call("POST", "/api/backtest/run", raw_body=body, headers={"Content-Type": content_type})
    assert res.status == 415, res.body
    assert res.error["type"] == "UnsupportedContentType"
    assert in_jobs_queue(stack) == 0


def test_a_json_array_body_is_422_and_queues_nothing(api: Api, stack: LocalStack) -> None:
    res = api.call("POST", "/api/backtest/run", raw_body=json.dumps([{"strategy_code": SMA_CROSS}]))
    assert res.status == 422, res.body
    assert res.error["field"] == "body"
    assert in_jobs_queue(stack) == 0


def test_a_parameter_of_the_wrong_type_is_422_naming_it(api: Api, stack: LocalStack) -> None:
    # SMA_CROSS reads params.get("fast", 5): an int
    res = api.submit(parameters={"fast": "ten", "slow": 20.5})
    assert res.status == 422, res.body
    fields = {e["field"]: e["message"] for e in res.body["errors"]}
    assert set(fields) == {"parameters.fast", "parameters.slow"}
    assert "whole number" in fields["parameters.fast"] and "'ten'" in fields["parameters.fast"]
    assert in_jobs_queue(stack) == 0


def test_a_declared_parameter_list_refuses_an_unknown_name(api: Api) -> None:
    code = 'PARAMETERS = {"fast": int, "slow": 30}\n' + SMA_CROSS
    assert api.submit(strategy_code=code, parameters={"fast": 3}).status == 202
    res = api.submit(strategy_code=code, parameters={"fats": 3})
    assert res.status == 422
    assert res.body["errors"] == [
        {
            "field": "parameters.fats",
            "message": "the strategy's PARAMETERS does not declare 'fats'; it declares: fast, slow",
        }
    ]


def test_validate_checks_everything_and_stores_nothing(api: Api, stack: LocalStack) -> None:
    res = api.validate(parameters={"slow": 25})
    assert res.status == 200, res.body
    assert res.body["style"] == "vectorized"
    assert res.body["estimated_bars"] == 23 * 7  # January 2024: 23 weekdays of 7 hourly bars
    assert res.body["parameters"] == {"fast": 5, "slow": 25}
    assert res.body["declared_parameters"] == {"fast": "int", "slow": "int"}
    assert stack.client("dynamodb").scan(TableName=stack.resources.jobs_table)["Count"] == 0
    assert in_jobs_queue(stack) == 0
    bad = api.validate(strategy_code="def generate_signals(data, params):\n    return open('x')\n")
    assert bad.status == 400 and bad.error["line"] == 2


def test_unknown_query_parameters_are_422(api: Api) -> None:
    res = api.call(LIST_EXECUTIONS.method, LIST_EXECUTIONS.path, query={"stauts": "FAILED"})
    assert res.status == 422
    assert res.error["field"] == "stauts"
    assert "name" in res.error["message"] and "status" in res.error["message"]


# ---- links ----------------------------------------------------------------------------------------------


def test_links_keep_the_stage_of_a_deployed_rest_api(api: Api, stack: LocalStack) -> None:
    # Given the request as API Gateway's own domain passes it: the stage is part of the called path
    host = "abc123.execute-api.us-east-1.amazonaws.com"
    event = api_event(
        "POST",
        "/api/backtest/run",
        headers={"Host": host, "X-Forwarded-Proto": "https", "Content-Type": "application/json"},
        body=json.dumps({"strategy_code": SMA_CROSS, "symbol": "AAPL", "timeframe": "1d"}),
        user="alice",
        base_path="/prod",
    )
    response = stack.invoke_api_event(event)
    body = json.loads(response["body"])
    expected = f"https://{host}/prod/api/backtest/status/{body['execution_id']}"
    assert body["status_url"] == expected
    assert response["multiValueHeaders"]["Location"] == [expected]


# ---- ?wait= ---------------------------------------------------------------------------------------------


def test_wait_answers_the_finished_job_in_the_seed_shape(api: Api, worker: EventSourceMapping) -> None:
    def deliver_once() -> None:  # a runner beside the API: takes the message as soon as it is there
        deadline = time.monotonic() + 20
        while worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    runner_thread = threading.Thread(target=deliver_once, daemon=True)
    runner_thread.start()
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, **_small()}, query={"wait": "20"})
    runner_thread.join(30)
    assert res.status == 200, res.body
    body = res.body
    assert body["success"] is True and body["status"] == "SUCCEEDED"
    assert {"execution_id", "performance_metrics", "trade_summary", "market_data_stats"} <= set(body)
    assert body["performance_metrics"]["total_trades"] == body["trade_summary"]["total_trades"]
    assert body["market_data_stats"]["data_points"] == 23 * 7
    assert body["results_url"] and body["equity_url"]


def test_wait_that_runs_out_answers_202(api: Api) -> None:
    started = time.monotonic()
    res = api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS, **_small()}, query={"wait": "0.5"})
    assert res.status == 202 and res.body["status"] == "QUEUED"
    assert 0.5 <= time.monotonic() - started < 5
    assert api.call("POST", "/api/backtest/run", body={"strategy_code": SMA_CROSS}, query={"wait": "26"}).status == 422


def _stored(stack: LocalStack, execution_id: str) -> dict[str, Any]:
    """The full result as stored (what results_url downloads)."""
    out = stack.client("s3").get_object(Bucket=stack.resources.results_bucket, Key=result_key(execution_id))
    data: dict[str, Any] = json.loads(gzip.decompress(out["Body"].read()))
    return data


def _small() -> dict[str, Any]:
    return {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-01-31"}


# ---- progress and cancel --------------------------------------------------------------------------------


def test_a_queued_job_says_so_and_a_cancelled_one_never_runs(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit().body["execution_id"]
    assert api.status(execution_id).body["progress"] == {
        "stage": "queued",
        "percent": 0.0,
        "bars_done": 0,
        "bars_total": 0,
        "updated_at": api.status(execution_id).body["created_at"],
    }
    cancelled = api.cancel(execution_id)
    assert cancelled.status == 200 and cancelled.body["status"] == "CANCELLED"
    assert cancelled.body["error"]["type"] == "Cancelled"
    assert api.cancel(execution_id).body["status"] == "CANCELLED"  # idempotent
    assert api.cancel(execution_id, user="mallory").status == 404  # owner only
    run = worker.poll()
    assert run is not None and run.failed_ids == []
    assert api.status(execution_id).body["status"] == "CANCELLED"
    assert stack.result_keys() == []


def test_a_running_job_reports_progress_and_stops_within_a_second_of_cancel(
    api: Api, stack: LocalStack, worker: EventSourceMapping, fast_progress: None
) -> None:
    execution_id = api.submit(strategy_code=FOREVER).body["execution_id"]
    with Background(worker) as background:
        running = _wait_status(api, execution_id, ("RUNNING",))
        assert running["progress"]["stage"] in ("data", "strategy")
        _wait_until(lambda: api.status(execution_id).body["progress"]["stage"] == "strategy")
        asked = time.monotonic()
        answer = api.cancel(execution_id).body
        assert answer["status"] == "RUNNING" and answer["cancel_requested"] is True
        done = _wait_status(api, execution_id, ("CANCELLED",), timeout=10)
        latency = time.monotonic() - asked
        background.join()
    assert latency < 2.0, latency
    assert done["error"]["type"] == "Cancelled" and done["progress"] is None
    assert stack.result_keys() == [] and in_jobs_queue(stack) == 0


def test_progress_moves_while_the_strategy_runs(
    api: Api, stack: LocalStack, worker: EventSourceMapping, fast_progress: None
) -> None:
    # 6,000 steps a bar over half a year of hourly bars: several seconds, so progress written even every 2 s
    # (the handler containers may import the service afresh: a patched interval would not reach them) moves
    execution_id = api.submit(
        strategy_code=SLOW_EVENT,
        symbol="BTCUSD",
        timeframe="1h",
        start_date="2024-01-01",
        end_date="2024-06-30",
        parameters={"steps": 6000},
    ).body["execution_id"]
    seen: list[tuple[str, int]] = []
    with Background(worker):
        while (body := api.status(execution_id).body)["status"] in ("QUEUED", "RUNNING"):
            if body["progress"] and body["progress"]["stage"] == "strategy":
                point = (body["progress"]["stage"], body["progress"]["bars_done"])
                if not seen or seen[-1] != point:
                    seen.append(point)
            time.sleep(0.05)
    assert body["status"] == "SUCCEEDED", body
    assert len(seen) >= 2, seen
    assert [done for _, done in seen] == sorted(done for _, done in seen)
    assert body["progress"] is None


def _wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---- a runner killed by its platform ---------------------------------------------------------------------


def _as_killed_runner_left_it(stack: LocalStack, execution_id: str, *, heartbeat_age: float) -> None:
    """What a runner Lambda killed mid-job leaves: RUNNING, one attempt, no recorded fault."""
    beat = iso(utc_now() - timedelta(seconds=heartbeat_age))
    stack.client("dynamodb").update_item(
        TableName=stack.resources.jobs_table,
        Key={"execution_id": {"S": execution_id}},
        UpdateExpression="SET #s = :running, attempts = :one, heartbeat_at = :beat, started_at = :beat, progress = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":running": {"S": "RUNNING"},
            ":one": {"N": "1"},
            ":beat": {"S": beat},
            ":p": {
                "M": {
                    "stage": {"S": "strategy"},
                    "percent": {"N": "40.5"},
                    "bars_done": {"N": "80"},
                    "bars_total": {"N": "161"},
                }
            },
        },
    )


def test_a_redelivery_after_the_runner_was_killed_ends_the_job_failed(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit().body["execution_id"]
    _as_killed_runner_left_it(stack, execution_id, heartbeat_age=STALE_AFTER_SECONDS + 5)
    run = worker.poll()
    assert run is not None and run.failed_ids == []
    body = api.status(execution_id).body
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "RunnerKilled"
    assert "out of memory or time" in body["error"]["message"] and "while strategy" in body["error"]["message"]
    assert in_jobs_queue(stack) == 0


def test_a_duplicate_delivery_leaves_a_live_runner_alone(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit().body["execution_id"]
    _as_killed_runner_left_it(stack, execution_id, heartbeat_age=1)  # its runner wrote a heartbeat a second ago
    run = worker.poll()
    # The record is reported failed (SQS brings it back later), and the job is untouched: its runner finishes it
    assert run is not None and len(run.failed_ids) == 1
    body = api.status(execution_id).body
    assert (body["status"], body["attempts"], body["error"]) == ("RUNNING", 1, None)


# ---- run management -------------------------------------------------------------------------------------


def test_rename_notes_and_filters(api: Api, worker: EventSourceMapping) -> None:
    first = api.submit(name="sma fast").body["execution_id"]
    second = api.submit(name="rsi slow", symbol="MSFT").body["execution_id"]
    worker.poll()
    worker.poll()
    changed = api.update(first, notes="try 10/40 next", name="sma fast v2")
    assert changed.status == 200 and (changed.body["name"], changed.body["notes"]) == ("sma fast v2", "try 10/40 next")
    assert api.update(first, notes=None).body["notes"] is None
    assert api.update(first, status="SUCCEEDED").status == 422  # not editable
    assert api.update(first, user="mallory", name="x").status == 404

    def listed(**query: str) -> list[str]:
        body = api.call(LIST_EXECUTIONS.method, LIST_EXECUTIONS.path, query=query).body
        return [job["execution_id"] for job in body["executions"]]

    assert listed(symbol="MSFT") == [second]
    assert listed(name="sma") == [first]
    assert listed(status="SUCCEEDED") == [second, first]
    assert listed(status="FAILED") == []
    line = api.call(LIST_EXECUTIONS.method, LIST_EXECUTIONS.path).body["executions"][0]
    assert line["parameters"] == {}
    assert {"sharpe_ratio", "max_drawdown_percent", "total_trades"} <= set(line["performance_metrics"])
    assert line["status_url"].endswith(GET_STATUS.path.format(execution_id=second))


def test_delete_removes_the_job_and_its_objects(api: Api, stack: LocalStack, worker: EventSourceMapping) -> None:
    done = api.submit().body["execution_id"]
    worker.poll()
    assert result_key(done) in stack.result_keys()
    assert api.delete(done, user="mallory").status == 404
    assert api.delete(done).status == 204
    assert api.status(done).status == 404
    assert stack.result_keys() == []
    queued = api.submit().body["execution_id"]
    assert api.delete(queued).status == 204
    run = worker.poll()  # its message finds no job: dropped, nothing stored
    assert run is not None and run.failed_ids == [] and stack.result_keys() == []


# ---- results for a browser ------------------------------------------------------------------------------


def test_the_curve_is_downsampled_with_its_true_max_drawdown_and_zooms(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit(symbol="BTCUSD", timeframe="5m", start_date="2024-01-01", end_date="2024-03-31").body[
        "execution_id"
    ]
    worker.poll()
    full = _stored(stack, execution_id)
    curve = full["equity_curve"]
    res = api.equity(execution_id, points="500")
    assert res.status == 200, res.body
    body = res.body
    assert body["points"] <= 500 < body["total_points"] == len(curve["equity"])
    assert body["max_drawdown_pct"] == min(curve["drawdown_pct"])
    assert min(body["drawdown_pct"]) == min(curve["drawdown_pct"])
    assert max(body["equity"]) == max(curve["equity"]) and min(body["equity"]) == min(curve["equity"])
    assert (body["start"], body["end"]) == (curve["time"][0], curve["time"][-1])
    # Zoomed into one week: more detail for that range
    week = api.equity(execution_id, points="500", start="2024-02-01T00:00:00Z", end="2024-02-07T23:59:59Z").body
    assert week["total_points"] == 7 * 288 and week["points"] <= 500
    assert week["start"] == "2024-02-01T00:00:00Z"
    assert api.equity(execution_id, points="3").status == 422


def test_trades_come_a_page_at_a_time_and_add_up_to_the_result(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit(strategy_code=FLIP, timeframe="1h", start_date="2024-01-01", end_date="2024-01-31").body[
        "execution_id"
    ]
    worker.poll()
    stored = _stored(stack, execution_id)["trades"]
    rows: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        query = {"limit": "50", **({"next_token": token} if token else {})}
        body = api.trades(execution_id, **query).body
        rows.extend(body["trades"])
        pages += 1
        token = body.get("next_token")
        if token is None:
            break
    assert body["total"] == len(stored["pnl"]) == len(rows) > 100
    assert pages == -(-len(rows) // 50)
    assert [r["pnl"] for r in rows] == stored["pnl"]
    assert [r["exit_reason"] for r in rows] == stored["exit_reason"]
    assert [r["entry_time"] for r in rows] == stored["entry_time"]
    assert api.trades(execution_id, next_token="bogus").status == 400
    other = api.submit().body["execution_id"]
    assert api.trades(other).status == 409  # not SUCCEEDED yet
    assert api.trades(execution_id, user="mallory").status == 404


def test_the_stored_objects_are_gzip_and_npy(stack: LocalStack, api: Api, worker: EventSourceMapping) -> None:
    execution_id = api.submit().body["execution_id"]
    worker.poll()
    s3 = stack.client("s3")
    bucket = stack.resources.results_bucket
    result = s3.get_object(Bucket=bucket, Key=result_key(execution_id))
    assert result["ContentEncoding"] == "gzip"
    assert json.loads(gzip.decompress(result["Body"].read()))["engine_version"]
    trades = s3.get_object(Bucket=bucket, Key=artifact_key(execution_id, Artifact.TRADES))["Body"].read()
    assert trades[:6] == b"\x93NUMPY"
    status = api.status(execution_id).body
    assert len(json.dumps(status)) < 8000  # a few KB whatever the job's size


def test_an_expired_job_says_so_and_its_results_are_gone(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    execution_id = api.submit().body["execution_id"]
    worker.poll()
    assert api.status(execution_id).body["results_url"]
    # When its expires_at has passed (DynamoDB's TTL deletes the record up to days later)
    stack.client("dynamodb").update_item(
        TableName=stack.resources.jobs_table,
        Key={"execution_id": {"S": execution_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
    )
    # Then the status says expired and hands out no dead link; the result endpoints answer 410
    body = api.status(execution_id).body
    assert body["status"] == "SUCCEEDED" and body["expired"] is True
    assert (body["results_url"], body["report_url"], body["equity_url"], body["trades_url"]) == (None,) * 4
    assert api.equity(execution_id).status == 410
    assert api.trades(execution_id).error["type"] == "Gone"


def test_stored_results_outlive_the_job_record() -> None:
    from backtest_service.topology import JOB_TTL_DAYS, RESULTS_BUCKET, RESULTS_PREFIX

    (rule,) = (rule for rule in RESULTS_BUCKET.lifecycle if rule.prefix == RESULTS_PREFIX)  # datasets have theirs
    assert rule.expiration_days > JOB_TTL_DAYS


# ---- fair capacity ---------------------------------------------------------------------------------------


def test_a_caller_at_its_limit_gets_429_and_its_next_job_goes_through_once_one_ends(
    api: Api, stack: LocalStack, worker: EventSourceMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backtest_service import settings, submission

    monkeypatch.setenv("MAX_ACTIVE_JOBS", "2")
    settings.get_settings.cache_clear()
    submission.default_deps.cache_clear()
    first, second = (api.submit().body["execution_id"] for _ in range(2))
    refused = api.submit()
    assert refused.status == 429, refused.body
    assert refused.error["type"] == "TooManyRequests" and "2 backtests queued or running" in refused.error["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert api.submit(user="bob").status == 202  # another caller is not held back
    # When one of alice's jobs ends (cancelled here; a finished run frees its slot the same way)
    assert api.cancel(first).body["status"] == "CANCELLED"
    # Then her next job gets through, and she is at her limit again
    assert api.submit().status == 202
    assert api.submit().status == 429
    assert api.status(second).body["status"] == "QUEUED"
