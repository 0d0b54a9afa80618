"""Infrastructure faults at each step of run_backtest, injected through the runner's `RunnerDeps` seam,
with SQS redelivery (the local stack's `EventSourceMapping`) and ops' DLQ replay (`ops.replay.replay`) in process.

Steps of one delivery: `jobs.start` (DynamoDB) → engine → `results.put` (S3) → `jobs.mark_succeeded`
(DynamoDB) → the event source mapping deletes the message. A fault either happens before a step (it
did not take effect) or after it (it took effect, but the caller never learned it: a lost answer, or
the container dying right there).

Whatever the fault, every job ends in exactly ONE terminal state (and stays there), with exactly ONE
result object in S3 (one version) when it SUCCEEDED and none when its strategy failed, and nothing is
left on the jobs queue or the DLQ.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from backtest_service import runner
from backtest_service.errors import JobBusy
from backtest_service.job_store import JobStore
from backtest_service.jobs import JobRecord, JobSummaryUpdate
from backtest_service.result_store import Artifact, ResultStore, artifact_key, artifact_keys, result_key
from backtest_service.topology import JOBS_QUEUE, RESULTS_PREFIX
from local.event_source import EventSourceMapping
from local.events import sqs_record
from local.stack import LocalStack
from ops.replay import ReplayTarget, replay
from tests.fault_support import Crash, inject, s3_unavailable, throttled
from tests.support import SMA_CROSS, Api, in_jobs_queue

pytestmark = pytest.mark.xdist_group("hardening-infra")

MAX_RECEIVES = JOBS_QUEUE.max_receive_count
RUN = {"symbol": "AAPL", "timeframe": "1d", "start_date": "2024-01-01", "end_date": "2024-03-31"}
RAISES = "def generate_signals(data, params):\n    raise ValueError('the strategy gave up')\n"
OUTCOMES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _outcome_table() -> Iterator[None]:
    yield
    print("\nfault | deliveries | status | attempts | result objects (versions)", *OUTCOMES, sep="\n")


class Engine:
    """The real engine, behind a method a test can make faulty (`RunnerDeps` itself is frozen)."""

    def __call__(self, request: Any, limits: Any, hooks: Any = None) -> Any:
        return self.run(request, limits, hooks)

    def run(self, request: Any, limits: Any, hooks: Any = None) -> Any:
        return runner.run_engine(request, limits, hooks)


@pytest.fixture
def deps(module_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> runner.RunnerDeps:
    """The runner's real collaborators, fresh for each test so faults can be injected into them."""
    real = runner.default_deps()
    fresh = runner.RunnerDeps(
        settings=real.settings,
        jobs=JobStore(real.jobs.table_name),
        results=ResultStore(real.results.bucket, url_ttl_seconds=real.results.url_ttl_seconds),
        engine=Engine(),
    )
    monkeypatch.setattr(runner, "default_deps", lambda: fresh)
    return fresh


@dataclasses.dataclass
class Scenario:
    stack: LocalStack
    worker: EventSourceMapping
    execution_id: str = ""
    deliveries: int = 0

    def submit(self, code: str = SMA_CROSS) -> str:
        response = Api(self.stack).call("POST", "/api/backtest/run", body={"strategy_code": code, **RUN})
        assert response.status == 202, response.body
        self.execution_id = response.body["execution_id"]
        return self.execution_id

    def deliver(self) -> list[str]:
        """One receive → run → delete/retry of the event source mapping; the ids reported failed."""
        run = self.worker.poll()
        assert run is not None, "no message to deliver"
        self.deliveries += 1
        return run.failed_ids

    def deliver_until_idle(self) -> None:
        while (run := self.worker.poll()) is not None:
            self.deliveries += 1
            assert self.deliveries < 10 * MAX_RECEIVES, "the message keeps coming back"
            del run

    def dead_letter(self) -> None:
        """The receive after the last one: SQS moves the message to the DLQ instead of delivering it."""
        assert self.worker.poll() is None
        assert in_jobs_queue(self.stack) == 0
        assert self.stack.queue_depth()["dlq"] == 1

    def replay_dlq(self) -> list[str]:
        names = self.stack.resources
        target = ReplayTarget(
            sqs=self.stack.client("sqs"),
            jobs=JobStore(names.jobs_table, self.stack.client("dynamodb")),
            jobs_queue_url=names.jobs_queue_url,
            dlq_url=names.dlq_url,
            move_task_supported=False,
            receive_wait_seconds=0,
        )
        return replay(target, out=lambda _: None).moved

    def job(self) -> JobRecord:
        record = JobStore(self.stack.resources.jobs_table, self.stack.client("dynamodb")).get(self.execution_id)
        assert record is not None
        return record

    def result_versions(self) -> list[dict[str, Any]]:
        prefix = f"{RESULTS_PREFIX}{self.execution_id}"
        out = self.stack.client("s3").list_object_versions(Bucket=self.stack.resources.results_bucket, Prefix=prefix)
        return [*out.get("Versions", []), *out.get("DeleteMarkers", [])]

    def result_keys(self) -> list[str]:
        prefix = f"{RESULTS_PREFIX}{self.execution_id}"
        out = self.stack.client("s3").list_objects_v2(Bucket=self.stack.resources.results_bucket, Prefix=prefix)
        return [o["Key"] for o in out.get("Contents", [])]

    def assert_final(self, fault: str, status: str, attempts: int) -> JobRecord:
        """Exactly one terminal state, one result object (none for a strategy fault), empty queues."""
        job = self.job()
        assert (job.status, job.attempts) == (status, attempts), job
        assert in_jobs_queue(self.stack) == 0
        assert self.stack.queue_depth()["dlq"] == 0
        keys, versions = self.result_keys(), self.result_versions()
        if status == "SUCCEEDED":
            assert keys == artifact_keys(self.execution_id)
            assert len(versions) == len(keys), versions  # one version of each object
            assert job.result_key == result_key(self.execution_id) and job.error is None and not job.dead_lettered
            stored = self.stack.client("s3").get_object(
                Bucket=self.stack.resources.results_bucket, Key=result_key(self.execution_id)
            )
            assert stored["ContentEncoding"] == "gzip"
            assert b'"performance_metrics"' in gzip.decompress(stored["Body"].read())
        else:
            assert keys == [] and versions == []
        # A terminal job stays terminal: one more delivery of its message changes nothing
        sqs = self.stack.client("sqs")
        sqs.send_message(
            QueueUrl=self.stack.resources.jobs_queue_url, MessageBody=f'{{"execution_id": "{job.execution_id}"}}'
        )
        assert self.worker.poll() is not None
        again = self.job()
        assert (again.status, again.attempts, again.finished_at) == (job.status, job.attempts, job.finished_at)
        assert self.result_versions() == versions
        OUTCOMES.append(f"{fault} | {self.deliveries} | {job.status} | {job.attempts} | {len(keys)} ({len(versions)})")
        return job


@pytest.fixture
def scenario(module_stack: LocalStack, deps: runner.RunnerDeps) -> Scenario:
    for url in (module_stack.resources.jobs_queue_url, module_stack.resources.dlq_url):  # whatever a failed test left
        _empty(module_stack, url)
    return Scenario(module_stack, module_stack.event_source)


def _empty(stack: LocalStack, url: str) -> None:
    """Delete every message of a queue (PurgeQueue is allowed once a minute)."""
    sqs = stack.client("sqs")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# ---- DynamoDB: the start update ---------------------------------------------------------------------


def test_throttled_start_is_retried_and_runs_once(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given DynamoDB throttles the conditional QUEUED → RUNNING update once
    fault = inject(deps.jobs, "start", lambda: throttled("UpdateItem"), before=1)
    scenario.submit()
    # When the message is delivered: the record is reported failed, the job is still QUEUED
    assert len(scenario.deliver()) == 1
    assert (scenario.job().status, scenario.job().attempts) == ("QUEUED", 0)
    # Then the redelivery runs it
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("DynamoDB throttle on the start update (once)", "SUCCEEDED", attempts=1)


def test_start_throttled_on_every_receive_is_dead_lettered_then_replayed_once(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    fault = inject(deps.jobs, "start", lambda: throttled("UpdateItem"), before=MAX_RECEIVES)
    scenario.submit()
    # When every receive is throttled
    for _ in range(MAX_RECEIVES):
        assert len(scenario.deliver()) == 1
    # Then the job says so (FAILED, dead-lettered) and the message is in the DLQ
    job = scenario.job()
    assert (job.status, job.dead_lettered, job.error["type"]) == ("FAILED", True, "InfrastructureError")  # type: ignore[index]
    scenario.dead_letter()
    # When ops replay the DLQ (DynamoDB is fine again)
    assert scenario.replay_dlq() == [scenario.execution_id]
    scenario.deliver_until_idle()
    assert fault.failures == MAX_RECEIVES
    scenario.assert_final("DynamoDB throttle on the start update (every receive) → DLQ → replay", "SUCCEEDED", 1)


# ---- the engine ------------------------------------------------------------------------------------


def test_an_engine_infrastructure_fault_is_retried(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given the sandbox cannot fork once (the container is out of processes)
    fault = inject(deps.engine, "run", lambda: BlockingIOError(11, "Resource temporarily unavailable"), before=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert scenario.job().status == "RUNNING"
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("engine cannot fork (OSError, once)", "SUCCEEDED", attempts=2)


# ---- S3: the result write ----------------------------------------------------------------------------


def test_a_failed_result_write_is_retried(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    fault = inject(deps.results, "put", lambda: s3_unavailable("PutObject"), before=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert result_key(scenario.execution_id) not in scenario.result_keys()  # the others are rewritten next time
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("S3 put fails (once)", "SUCCEEDED", attempts=2)


def test_a_result_write_whose_answer_was_lost_is_rewritten_into_the_same_object(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given S3 stored the object but the runner never got the answer (timeout after the write)
    fault = inject(deps.results, "put", lambda: s3_unavailable("PutObject"), after=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert len(scenario.result_versions()) == len(artifact_keys(scenario.execution_id)) - 1  # all but the summary
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("S3 put took effect, answer lost (once)", "SUCCEEDED", attempts=2)


def test_s3_down_on_every_receive_is_dead_lettered_then_replayed_once(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    fault = inject(deps.results, "put", lambda: s3_unavailable("PutObject"), before=MAX_RECEIVES)
    scenario.submit()
    for _ in range(MAX_RECEIVES):
        assert len(scenario.deliver()) == 1
    job = scenario.job()
    assert (job.status, job.dead_lettered, job.attempts) == ("FAILED", True, MAX_RECEIVES)
    assert scenario.result_keys() == []
    scenario.dead_letter()
    assert scenario.replay_dlq() == [scenario.execution_id]
    scenario.deliver_until_idle()
    assert fault.failures == MAX_RECEIVES
    scenario.assert_final("S3 put fails (every receive) → DLQ → replay", "SUCCEEDED", attempts=MAX_RECEIVES + 1)


# ---- between the result write and the status write -----------------------------------------------------


def test_a_crash_after_the_result_write_reruns_into_the_same_object(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given the container dies after the S3 write, before the status write
    fault = inject(deps.results, "put", lambda: Crash("killed after PutObject"), after=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert scenario.job().status == "RUNNING"
    assert len(scenario.result_versions()) == len(artifact_keys(scenario.execution_id)) - 1  # no summary yet
    # Then the redelivery (RUNNING → RUNNING) runs again and overwrites the same object
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("crash after the S3 write, before the status write", "SUCCEEDED", attempts=2)


def test_a_crash_after_everything_was_stored_commits_that_result_without_running_again(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given the container dies right after the summary (the run's commit point) was written
    fault = inject(deps.results, "put_summary", lambda: Crash("killed after the summary"), after=1)
    runs = inject(deps.engine, "run", lambda: Crash("unused"))  # counts the engine's runs, never fails
    scenario.submit()
    assert len(scenario.deliver()) == 1 and scenario.job().status == "RUNNING"
    # When the message comes back: the stored result is the job's, the strategy does not run again
    assert scenario.deliver() == []
    assert (fault.failures, runs.calls) == (1, 1)
    job = scenario.assert_final("crash after the summary write, before the status write", "SUCCEEDED", attempts=2)
    stored = json.loads(
        scenario.stack.client("s3")
        .get_object(
            Bucket=scenario.stack.resources.results_bucket, Key=artifact_key(scenario.execution_id, Artifact.SUMMARY)
        )["Body"]
        .read()
    )
    assert job.timings == stored["timings"]  # the record says what the stored result says: one truth


def test_a_second_run_never_replaces_the_committed_summary(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given a summary already committed by an earlier run
    scenario.submit()
    assert scenario.deliver() == []
    first = deps.results.get_summary(scenario.execution_id)
    # When another run tries to commit its own
    assert deps.results.put_summary(scenario.execution_id, {**(first or {}), "timings": {"total": -1}}) is False
    # Then the first stays
    assert deps.results.get_summary(scenario.execution_id) == first


def test_crashes_after_the_result_write_on_every_receive_then_replay(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    fault = inject(deps.results, "put", lambda: Crash("killed after PutObject"), after=MAX_RECEIVES)
    scenario.submit()
    for _ in range(MAX_RECEIVES):
        assert len(scenario.deliver()) == 1
    # Then the job is FAILED (dead-lettered): no run stored everything (no summary), so the partial objects
    # are removed with it, and the replay makes it whole
    assert (scenario.job().status, len(scenario.result_versions())) == ("FAILED", 0)
    scenario.dead_letter()
    assert scenario.replay_dlq() == [scenario.execution_id]
    scenario.deliver_until_idle()
    assert fault.failures == MAX_RECEIVES
    scenario.assert_final(
        "crash after the S3 write (every receive) → DLQ → replay", "SUCCEEDED", attempts=MAX_RECEIVES + 1
    )


# ---- DynamoDB: the final status write ----------------------------------------------------------------


def test_throttled_final_status_write_is_retried(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    fault = inject(deps.jobs, "mark_succeeded", lambda: throttled("UpdateItem"), before=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert scenario.job().status == "RUNNING"
    assert len(scenario.result_versions()) == len(artifact_keys(scenario.execution_id))
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("DynamoDB throttle on the final status write (once)", "SUCCEEDED", attempts=2)


def test_status_store_down_for_every_write_leaves_the_job_running_until_replay(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given DynamoDB refuses every SUCCEEDED write (the dead-letter path's too) and, on the last receive, the
    # FAILED write
    succeeded = inject(deps.jobs, "mark_succeeded", lambda: throttled("UpdateItem"), before=MAX_RECEIVES + 1)
    failed = inject(deps.jobs, "mark_failed", lambda: throttled("UpdateItem"), before=1)
    scenario.submit()
    for _ in range(MAX_RECEIVES):
        assert len(scenario.deliver()) == 1
    # Then the job is stuck RUNNING (not terminal: nothing was lost) and its message is in the DLQ
    assert (scenario.job().status, failed.failures) == ("RUNNING", 1)
    scenario.dead_letter()
    # When ops replay (replay resets a RUNNING job of a dead-lettered message)
    assert scenario.replay_dlq() == [scenario.execution_id]
    scenario.deliver_until_idle()
    assert succeeded.failures == MAX_RECEIVES + 1
    scenario.assert_final(
        "DynamoDB down for every status write → stuck RUNNING → DLQ → replay", "SUCCEEDED", MAX_RECEIVES + 1
    )


def test_the_last_receive_finds_the_stored_result_and_the_job_succeeds_from_it(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given every run stores everything but its SUCCEEDED write fails (throttled) on every receive
    succeeded = inject(deps.jobs, "mark_succeeded", lambda: throttled("UpdateItem"), before=MAX_RECEIVES)
    scenario.submit()
    for _ in range(MAX_RECEIVES - 1):
        assert len(scenario.deliver()) == 1
    # When the last receive fails the same way
    assert scenario.deliver() == []  # the message is done: nothing goes to the DLQ
    # Then the job's state follows its stored result: SUCCEEDED from the summary, never FAILED
    assert succeeded.failures == MAX_RECEIVES
    job = scenario.assert_final("status write fails on every receive, the result is stored", "SUCCEEDED", 3)
    assert job.performance_metrics and job.result_key == result_key(scenario.execution_id)


# ---- after the status write ------------------------------------------------------------------------------


def test_a_crash_after_the_status_write_is_a_harmless_redelivery(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given the container dies after SUCCEEDED was written, before the invocation returns
    fault = inject(deps.jobs, "mark_succeeded", lambda: Crash("killed after UpdateItem"), after=1)
    scenario.submit()
    assert len(scenario.deliver()) == 1
    assert scenario.job().status == "SUCCEEDED"
    # Then the redelivery skips the finished job
    assert scenario.deliver() == []
    assert fault.failures == 1
    scenario.assert_final("crash after the status write, before the invocation returns", "SUCCEEDED", 1)


def test_a_handled_message_that_was_never_deleted_is_redelivered_and_skipped(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given the handler succeeded but the message delete never happened (the poller died first)
    execution_id = scenario.submit()
    sqs, url = scenario.stack.client("sqs"), scenario.stack.resources.jobs_queue_url
    message = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"][0]
    run = scenario.worker.deliver([sqs_record(message["Body"], receive_count=1, message_id=message["MessageId"])])
    scenario.deliveries += 1
    assert run.failed_ids == [] and scenario.job().status == "SUCCEEDED"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    # When SQS delivers it again
    again = scenario.worker.poll()
    scenario.deliveries += 1
    assert again is not None and again.event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert again.failed_ids == []
    assert scenario.job().execution_id == execution_id
    scenario.assert_final("handler succeeded, message not deleted → redelivered", "SUCCEEDED", attempts=1)


def test_a_duplicate_delivered_while_the_first_still_runs_gives_one_result(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given SQS hands the same message to a second runner while the first is still in the engine
    engine: Any = deps.engine
    real_run = engine.run
    overlapped: list[runner.Outcome | str] = []
    calls = 0

    def run_with_a_duplicate(request: Any, limits: Any, hooks: Any = None) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # the first runner is in the engine: the duplicate runs start to finish
            body = f'{{"execution_id": "{scenario.execution_id}"}}'
            try:
                overlapped.append(runner.handle_message(body, receive_count=2, deps=deps))
            except JobBusy:
                overlapped.append("busy")
        return real_run(request, limits, hooks)

    engine.run = run_with_a_duplicate
    scenario.submit()
    # When the first delivery finishes after the duplicate did
    assert scenario.deliver() == []
    # Then the duplicate saw a live runner (fresh heartbeat) and left the job alone (its message comes back
    # later, and is then skipped); the first wrote the one set of objects
    assert overlapped == ["busy"]
    scenario.assert_final("duplicate delivery while the first still runs", "SUCCEEDED", attempts=1)


# ---- a strategy fault meets an infrastructure fault ---------------------------------------------------------


def test_a_throttled_failure_write_is_retried_and_fails_the_job_once(
    scenario: Scenario, deps: runner.RunnerDeps
) -> None:
    # Given a strategy that raises, and DynamoDB throttling the FAILED write once
    fault = inject(deps.jobs, "mark_failed", lambda: throttled("UpdateItem"), before=1)
    scenario.submit(RAISES)
    assert len(scenario.deliver()) == 1
    assert scenario.job().status == "RUNNING"
    # Then the redelivery fails the same way and records it
    assert scenario.deliver() == []
    assert fault.failures == 1
    job = scenario.assert_final("DynamoDB throttle on the FAILED write of a strategy fault", "FAILED", 2)
    assert job.error == {"type": "StrategyError", "message": "line 2: ValueError: the strategy gave up", "line": 2}
    assert job.dead_lettered is False


def test_replay_leaves_a_stale_dlq_message_of_a_finished_job_alone(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given a job that SUCCEEDED, and a stale copy of its message in the DLQ
    scenario.submit()
    assert scenario.deliver() == []
    names = scenario.stack.resources
    scenario.stack.client("sqs").send_message(
        QueueUrl=names.dlq_url, MessageBody=f'{{"execution_id": "{scenario.execution_id}"}}'
    )
    # When ops replay, twice
    assert scenario.replay_dlq() == []
    assert scenario.replay_dlq() == []
    # Then nothing ran again
    assert scenario.worker.poll() is None
    scenario.assert_final("stale DLQ message of a SUCCEEDED job, replayed twice", "SUCCEEDED", attempts=1)


def test_a_strategy_fault_is_never_replayed(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given a job FAILED by its strategy, and (by mistake) its message in the DLQ
    scenario.submit(RAISES)
    assert scenario.deliver() == []
    scenario.stack.client("sqs").send_message(
        QueueUrl=scenario.stack.resources.dlq_url, MessageBody=f'{{"execution_id": "{scenario.execution_id}"}}'
    )
    # When ops replay: the message is kept in the DLQ and the job stays FAILED
    assert scenario.replay_dlq() == []
    assert scenario.stack.queue_depth()["dlq"] == 1
    _empty(scenario.stack, scenario.stack.resources.dlq_url)
    scenario.assert_final("replay of a job its strategy failed (refused)", "FAILED", attempts=1)


def test_a_summary_write_cannot_overwrite_a_terminal_status(scenario: Scenario, deps: runner.RunnerDeps) -> None:
    # Given a job that FAILED by its strategy
    scenario.submit(RAISES)
    assert scenario.deliver() == []
    # When a late SUCCEEDED write and a late FAILED write arrive (another runner, a bug)
    summary = JobSummaryUpdate(
        performance_metrics={},
        trade_summary={},
        market_data_stats={},
        result_key="results/x.json",
        timings={},
        engine_version="0",
        data_fingerprint="0",
    )
    # Then both are refused by the store's conditions
    assert deps.jobs.mark_succeeded(scenario.execution_id, summary) is False
    assert deps.jobs.mark_failed(scenario.execution_id, {"type": "InfrastructureError", "message": "late"}) is False
    scenario.assert_final("late SUCCEEDED / FAILED writes over a FAILED job", "FAILED", attempts=1)
