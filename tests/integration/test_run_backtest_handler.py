"""The job lifecycle through the real handlers: submit → run_backtest (SQS) → status, on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.exceptions import ClientError

from backtest_engine import __version__
from backtest_service import runner
from backtest_service.errors import ReplayRefused
from backtest_service.job_store import JobStore, default_job_store, reset_for_replay
from backtest_service.jobs import JobSummaryUpdate
from backtest_service.result_store import artifact_keys, default_result_store
from backtest_service.topology import JOBS_QUEUE, RESULTS_PREFIX
from local.event_source import EventSourceMapping
from local.events import sqs_record
from local.stack import LocalStack
from tests.support import Api, in_jobs_queue

pytestmark = pytest.mark.xdist_group("integration")

FAILING_STRATEGY = """\
import numpy as np


def generate_signals(data, params):
    fast = data.close.values
    raise ValueError("the strategy gave up")
"""


def _emitted_metrics(stdout: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name → [(dimensions, value)] from the EMF lines powertools printed."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dims = {d: blob[d] for group in directive["Dimensions"] for d in group}
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.setdefault(metric["Name"], []).append((dims, value))
    return found


def _s3_object(stack: LocalStack, execution_id: str) -> dict[str, Any]:
    return stack.client("s3").head_object(
        Bucket=stack.resources.results_bucket, Key=f"{RESULTS_PREFIX}{execution_id}.json"
    )


def test_submit_run_status_with_the_full_result_behind_the_presigned_link(
    api: Api, stack: LocalStack, worker: EventSourceMapping, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a submitted backtest
    execution_id = api.submit(name="happy").body["execution_id"]

    # When the runner receives its message
    run = worker.poll()

    # Then the record succeeded and the queue is empty
    assert run is not None
    assert run.response == {"batchItemFailures": []}
    assert worker.poll() is None
    assert stack.queue_depth()["dlq"] == 0

    # And the status shows the summary with the seed's field names
    res = api.status(execution_id)
    assert res.status == 200
    job = res.body
    assert job["status"] == "SUCCEEDED"
    assert job["attempts"] == 1
    assert job["error"] is None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["engine_version"] == __version__
    metrics = job["performance_metrics"]
    for key in ("total_return_percent", "sharpe_ratio", "max_drawdown_percent", "total_trades", "win_rate"):
        assert key in metrics
    assert metrics["final_capital"] == pytest.approx(10_000 * (1 + metrics["total_return_percent"] / 100))
    summary = job["trade_summary"]
    assert summary["total_trades"] == metrics["total_trades"] > 0
    assert summary["winning_trades"] + summary["losing_trades"] <= summary["total_trades"]
    stats = job["market_data_stats"]
    assert stats["data_points"] > 100
    assert stats["date_range"]["start"].startswith("2024-01-0")
    assert stats["date_range"]["end"].startswith("2024-01-31")
    assert 0 < stats["price_range"]["min"] < stats["price_range"]["max"]

    # And results_url is a SigV4-presigned GET of the result object, valid for the configured time
    url = urlparse(job["results_url"])
    assert url.scheme == "https"
    assert url.hostname is not None and url.hostname.startswith(stack.resources.results_bucket)
    assert url.path == f"/{RESULTS_PREFIX}{execution_id}.json"
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert job["results_url_expires_in"] == 900

    # And the object (fetched by key: moto is in-process) is the full result matching the summary
    full = default_result_store().get(f"{RESULTS_PREFIX}{execution_id}.json")
    assert full["performance_metrics"] == pytest.approx(metrics)
    assert full["trade_summary"] == summary
    assert len(full["trades"]["pnl"]) == summary["total_trades"]  # columnar: one list per field
    assert len(full["equity_curve"]["equity"]) == stats["data_points"]
    assert full["request"]["name"] == "happy"
    assert full["engine_version"] == __version__
    assert full["data_fingerprint"]

    # And the runner emitted its metrics
    emitted = _emitted_metrics(capsys.readouterr().out)
    assert [v for _, v in emitted["JobsSubmitted"]] == [1.0]
    assert [v for _, v in emitted["JobsSucceeded"]] == [1.0]
    assert [v for _, v in emitted["BarsProcessed"]] == [stats["data_points"]]
    assert emitted["RunDuration"][0][1] > 0


def test_a_message_delivered_twice_runs_once(api: Api, stack: LocalStack, worker: EventSourceMapping) -> None:
    # Given a job, When SQS delivers its message twice in one batch (standard queues may)
    execution_id = api.submit().body["execution_id"]
    body = json.dumps({"execution_id": execution_id})
    run = worker.deliver([sqs_record(body, message_id="m-1"), sqs_record(body, message_id="m-2")])
    # Then both records succeed, the job ran once, and there is one result
    assert run.failed_ids == []
    job = stack.job(execution_id)
    assert job is not None
    assert (job["status"], job["attempts"]) == ("SUCCEEDED", 1)
    assert stack.result_keys() == artifact_keys(execution_id)


def test_a_message_replayed_after_success_changes_nothing(
    api: Api, stack: LocalStack, worker: EventSourceMapping
) -> None:
    # Given a job that succeeded
    execution_id = api.submit().body["execution_id"]
    worker.drain()
    before = stack.job(execution_id)
    etag = _s3_object(stack, execution_id)["ETag"]
    modified = _s3_object(stack, execution_id)["LastModified"]

    # When the same message arrives again later (e.g. moved back from the DLQ by mistake)
    run = worker.deliver([sqs_record(json.dumps({"execution_id": execution_id}), receive_count=1)])

    # Then it succeeds without running: same job record, same single result object
    assert run.failed_ids == []
    assert stack.job(execution_id) == before
    assert stack.result_keys() == artifact_keys(execution_id)
    assert _s3_object(stack, execution_id)["ETag"] == etag
    assert _s3_object(stack, execution_id)["LastModified"] == modified


def test_a_strategy_error_fails_the_job_with_its_line_and_is_not_retried(
    api: Api, stack: LocalStack, worker: EventSourceMapping, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a strategy that raises on line 6
    execution_id = api.submit(strategy_code=FAILING_STRATEGY).body["execution_id"]
    # When it runs
    run = worker.poll()
    # Then the record is not reported failed (no retry), and nothing is left in either queue
    assert run is not None and run.failed_ids == []
    assert in_jobs_queue(stack) == 0
    assert stack.queue_depth()["dlq"] == 0
    # And the job is FAILED with the strategy's error, its line, and no result
    job = api.status(execution_id).body
    assert (job["status"], job["attempts"]) == ("FAILED", 1)
    assert job["error"]["type"] == "StrategyError"
    assert job["error"]["line"] == 6
    assert "the strategy gave up" in job["error"]["message"]
    assert job["results_url"] is None and job["performance_metrics"] is None
    assert stack.result_keys() == []
    # And JobsFailed was counted with the error type as its dimension
    failed = _emitted_metrics(capsys.readouterr().out)["JobsFailed"]
    assert failed == [({"service": "backtest-service", "error_type": "StrategyError"}, 1.0)]


def test_a_strategy_fault_is_not_replayable(api: Api, stack: LocalStack, worker: EventSourceMapping) -> None:
    execution_id = api.submit(strategy_code=FAILING_STRATEGY).body["execution_id"]
    worker.drain()
    with pytest.raises(ReplayRefused, match="after a strategy fault"):
        reset_for_replay(execution_id)


def test_infrastructure_fault_is_retried_then_dead_lettered_then_replayed_once(
    api: Api,
    stack: LocalStack,
    worker: EventSourceMapping,
    inject_fault: Any,
    log_records: Callable[[], list[dict[str, Any]]],
) -> None:
    execution_id = api.submit().body["execution_id"]

    # Given S3 refuses every write
    with inject_fault("s3", "PutObject") as calls:
        # When the message is delivered max_receive_count times
        for receive in range(1, JOBS_QUEUE.max_receive_count + 1):
            run = worker.poll()
            assert run is not None
            # Then each delivery is reported failed, so SQS retries it
            assert run.failed_ids == [run.event["Records"][0]["messageId"]]
            assert run.event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(receive)
            job = stack.job(execution_id)
            assert job is not None
            if receive < JOBS_QUEUE.max_receive_count:
                # still RUNNING between retries
                assert (job["status"], job["attempts"], job["error"]) == ("RUNNING", receive, None)
        assert len(calls) == JOBS_QUEUE.max_receive_count

    # Then after the last receive the job shows the failure, and SQS moved the message to the DLQ
    status = api.status(execution_id).body
    assert status["status"] == "FAILED"
    assert status["attempts"] == JOBS_QUEUE.max_receive_count
    assert status["error"]["type"] == "InfrastructureError"
    assert "dead-letter queue" in status["error"]["message"]
    assert stack.job(execution_id)["dead_lettered"] is True  # type: ignore[index]
    assert worker.poll() is None
    assert stack.queue_depth()["dlq"] == 1
    assert stack.result_keys() == []
    # And every log line of the runner named the job
    logs = log_records()
    retries = [entry for entry in logs if entry["message"] == "infrastructure fault; SQS will redeliver"]
    assert len(retries) == JOBS_QUEUE.max_receive_count - 1
    assert {entry["execution_id"] for entry in retries} == {execution_id}
    dead = [entry for entry in logs if entry["level"] == "ERROR"]
    assert dead and dead[0]["execution_id"] == execution_id and dead[0]["receive_count"] == 3

    # When ops reset the job and move the message back (S3 works again)
    replayed = reset_for_replay(execution_id)
    assert (replayed.status, replayed.error, replayed.dead_lettered) == ("QUEUED", None, False)
    sqs = stack.client("sqs")
    message = sqs.receive_message(QueueUrl=stack.resources.dlq_url)["Messages"][0]
    sqs.send_message(QueueUrl=stack.resources.jobs_queue_url, MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=stack.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    runs = worker.drain()

    # Then it runs once and succeeds, with exactly one result
    assert [r.failed_ids for r in runs] == [[]]
    status = api.status(execution_id).body
    assert (status["status"], status["error"]) == ("SUCCEEDED", None)
    assert status["attempts"] == JOBS_QUEUE.max_receive_count + 1
    assert stack.result_keys() == artifact_keys(execution_id)
    # And a SUCCEEDED job is never reset
    with pytest.raises(ReplayRefused, match="SUCCEEDED"):
        reset_for_replay(execution_id)


def test_dynamodb_throttled_at_start_is_retried(
    api: Api, stack: LocalStack, worker: EventSourceMapping, inject_fault: Any
) -> None:
    execution_id = api.submit().body["execution_id"]
    # Given DynamoDB throttles the runner's first conditional update
    with inject_fault("dynamodb", "UpdateItem", times=1, code="ProvisionedThroughputExceededException"):
        first = worker.poll()
        assert first is not None and len(first.failed_ids) == 1
        job = stack.job(execution_id)
        assert job is not None and (job["status"], job["attempts"]) == ("QUEUED", 0)
        # When the message comes back
        second = worker.poll()
    # Then the job runs
    assert second is not None and second.failed_ids == []
    job = stack.job(execution_id)
    assert job is not None and (job["status"], job["attempts"]) == ("SUCCEEDED", 1)


class _CrashBeforeStatusWrite(JobStore):
    """The process dies after the result is in S3, before SUCCEEDED is written (once)."""

    crashes = 0

    def mark_succeeded(self, execution_id: str, summary: JobSummaryUpdate) -> bool:
        if _CrashBeforeStatusWrite.crashes == 0:
            _CrashBeforeStatusWrite.crashes += 1
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "crash"}}, "UpdateItem")
        return super().mark_succeeded(execution_id, summary)


def test_a_crash_between_the_result_and_the_status_reruns_into_the_same_object(
    api: Api, stack: LocalStack, worker: EventSourceMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runner whose status write fails once, after the S3 write (the collaborators seam)
    real = runner.default_deps()
    crashing = runner.RunnerDeps(
        settings=real.settings,
        jobs=_CrashBeforeStatusWrite(default_job_store().table_name),
        results=real.results,
    )
    monkeypatch.setattr(runner, "default_deps", lambda: crashing)
    execution_id = api.submit().body["execution_id"]

    # When the message is delivered: the result is written, the status write fails → retried
    first = worker.poll()
    assert first is not None and len(first.failed_ids) == 1
    job = stack.job(execution_id)
    assert job is not None and (job["status"], job["attempts"]) == ("RUNNING", 1)
    assert stack.result_keys() == artifact_keys(execution_id)

    # Then the redelivery (RUNNING → RUNNING) runs again, overwrites the same object and succeeds
    second = worker.poll()
    assert second is not None and second.failed_ids == []
    job = stack.job(execution_id)
    assert job is not None and (job["status"], job["attempts"]) == ("SUCCEEDED", 2)
    assert stack.result_keys() == artifact_keys(execution_id)
    assert job["result_key"] == f"{RESULTS_PREFIX}{execution_id}.json"


def test_a_message_without_an_execution_id_is_reported_failed(stack: LocalStack, worker: EventSourceMapping) -> None:
    run = worker.deliver([sqs_record("not json", message_id="bad-1"), sqs_record('{"id": 1}', message_id="bad-2")])
    assert sorted(run.failed_ids) == ["bad-1", "bad-2"]


def test_a_message_for_a_job_that_no_longer_exists_is_dropped(stack: LocalStack, worker: EventSourceMapping) -> None:
    body = json.dumps({"execution_id": "00000000-0000-4000-8000-000000000000"})
    run = worker.deliver([sqs_record(body)])
    assert run.failed_ids == []
    assert stack.result_keys() == []


def test_the_first_job_of_a_container_reports_which_sandbox_layers_hold(
    api: Api, stack: LocalStack, worker: EventSourceMapping, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh container (the layer check runs once per container, on its first job)
    runner.check_sandbox.cache_clear()
    api.submit(name="layers")
    capsys.readouterr()
    # When the runner takes its first job
    worker.drain()
    # Then it emitted one metric per layer (and logged them): all of them hold on this machine
    out = capsys.readouterr().out
    emitted = _emitted_metrics(out)
    for layer in runner.SANDBOX_LAYERS:
        assert [v for _, v in emitted[f"Sandbox.{layer}"]] == [1.0], layer
    layers = runner.check_sandbox()  # what it logged (at INFO, which this suite does not print)
    assert layers["seccomp"] is True and layers["rlimits"]["NOFILE"] == 0 and layers["rlimits"]["NPROC"] == 0
    # And a second job does not repeat it
    api.submit(name="again")
    capsys.readouterr()
    worker.drain()
    assert "Sandbox.core" not in _emitted_metrics(capsys.readouterr().out)
