"""Infrastructure faults at each step of an optimization chunk (issue 14), injected through the chunk runner's
`ChunkDeps` seam, with SQS redelivery (the local stack's chunks event source mapping) and ops' DLQ replay
(`ops.replay.replay`) in process, as tests/hardening/test_infra_faults.py does for single backtests.

Steps of one chunk delivery: `store.start_chunk` → the engine → `results.put_chunk` (S3) →
`store.mark_chunk_succeeded` → `store.count_chunk` → (the last count) the aggregation: `results.put_table`,
`store.mark_succeeded` → the mapping deletes the message. A fault happens before a step (it did not take
effect) or after it (it did, and nobody learned it: a lost answer, the container dying right there).

Whatever the fault, the optimization ends SUCCEEDED exactly once, with every combination in its table exactly
once, every chunk counted once, one results object per chunk, and nothing left in the chunks queue or its DLQ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from backtest_service import optimization_runner
from backtest_service.job_queue import ChunkMessage
from backtest_service.job_store import JobStore
from backtest_service.jobs import iso, utc_now
from backtest_service.optimization_results import OptimizationResults, chunk_key, prefix
from backtest_service.optimization_store import OptimizationStore
from backtest_service.optimizations import chunk_item
from backtest_service.topology import OPTIMIZATION_QUEUE
from local.stack import LocalStack
from ops.replay import ReplayTarget, replay
from tests.fault_support import Crash, Injected, inject, s3_unavailable, throttled
from tests.optimization_support import Optimizations, chunked_stack, search

pytestmark = pytest.mark.xdist_group("hardening-optimizations")

MAX_RECEIVES = OPTIMIZATION_QUEUE.max_receive_count
COMBINATIONS = 12  # the shared search: 4 chunks of 3
CHUNKS = 4


def chunk_is(n: int) -> Callable[..., bool]:
    """Matches calls whose second argument (after the optimization id) is chunk `n`."""
    return lambda _id, chunk, *a, **k: chunk == n


class Engine:
    """The real batch evaluator behind a method a test can make faulty (`ChunkDeps` is frozen)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return optimization_runner.evaluate(*args, **kwargs)


@pytest.fixture(scope="module")
def opt_stack() -> Iterator[LocalStack]:
    with chunked_stack() as local_stack:
        yield local_stack


@pytest.fixture
def deps(opt_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> optimization_runner.ChunkDeps:
    """The chunk runner's real collaborators, fresh for each test so faults can be injected into them."""
    real = optimization_runner.default_deps()
    fresh = dataclasses.replace(
        real,
        store=OptimizationStore(real.store.table_name),
        results=OptimizationResults(real.results.bucket),
        evaluate=Engine(),
    )
    monkeypatch.setattr(optimization_runner, "default_deps", lambda: fresh)
    return fresh


@dataclasses.dataclass
class Scenario:
    stack: LocalStack
    api: Optimizations
    optimization_id: str = ""
    deliveries: int = 0

    def submit(self) -> str:
        self.optimization_id = self.api.started(search())
        assert self.api.record(self.optimization_id).chunks == CHUNKS
        return self.optimization_id

    def deliver(self) -> list[str]:
        run = self.stack.optimization_source.poll()
        assert run is not None, "no chunk message to deliver"
        self.deliveries += 1
        return run.failed_ids

    def deliver_until_idle(self) -> None:
        while self.stack.optimization_source.poll() is not None:
            self.deliveries += 1
            assert self.deliveries < 10 * CHUNKS * MAX_RECEIVES, "a message keeps coming back"

    def replay_dlq(self) -> list[str]:
        names = self.stack.resources
        target = ReplayTarget(
            sqs=self.stack.client("sqs"),
            jobs=JobStore(names.jobs_table, self.stack.client("dynamodb")),
            jobs_queue_url=names.jobs_queue_url,
            dlq_url=names.dlq_url,
            move_task_supported=False,
            receive_wait_seconds=0,
            optimizations=self.api.store,
            optimization_queue_url=names.optimization_queue_url,
            optimization_dlq_url=names.optimization_dlq_url,
        )
        return replay(target, optimization_ids=[self.optimization_id], out=lambda _: None).chunks_moved

    def keys(self) -> list[str]:
        out = self.stack.client("s3").list_objects_v2(
            Bucket=self.stack.resources.results_bucket, Prefix=prefix(self.optimization_id)
        )
        return sorted(o["Key"] for o in out.get("Contents", []))

    def assert_final(self, *, failed: int = 0) -> None:
        """SUCCEEDED once; every combination in the table once; every chunk counted once; empty queues."""
        record = self.api.record(self.optimization_id)
        assert record.status == "SUCCEEDED", record
        assert (record.counted, record.chunks_done, record.combinations_done) == (
            set(range(CHUNKS)),
            CHUNKS,
            COMBINATIONS,
        )
        assert record.dead_chunks == set() and record.error is None and not record.dead_lettered
        assert record.combinations_failed == failed
        table = self.api.table(self.optimization_id)["combinations"]
        assert [c["index"] for c in table] == list(range(COMBINATIONS))
        assert sum(c["status"] == "failed" for c in table) == failed
        expected = [chunk_key(self.optimization_id, n) for n in range(CHUNKS)]
        expected += [f"{prefix(self.optimization_id)}combinations.{kind}" for kind in ("csv", "json")]
        assert self.keys() == sorted(expected)
        depth = self.stack.chunk_queue_depth()
        assert (depth["visible"], depth["in_flight"], depth["dlq"]) == (0, 0, 0)
        # A finished optimization stays finished: one more copy of every chunk's message changes nothing
        finished_at = record.finished_at
        for n in range(CHUNKS):
            self.stack.client("sqs").send_message(
                QueueUrl=self.stack.resources.optimization_queue_url,
                MessageBody=ChunkMessage(self.optimization_id, n).encode(),
            )
        self.deliver_until_idle()
        again = self.api.record(self.optimization_id)
        assert (again.status, again.finished_at, again.chunks_done) == ("SUCCEEDED", finished_at, CHUNKS)


@pytest.fixture
def scenario(opt_stack: LocalStack, deps: optimization_runner.ChunkDeps) -> Scenario:
    sqs = opt_stack.client("sqs")
    for url in (opt_stack.resources.optimization_queue_url, opt_stack.resources.optimization_dlq_url):
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return Scenario(opt_stack, Optimizations(opt_stack))


# ---- duplicates ----------------------------------------------------------------------------------------


def test_a_duplicate_delivered_while_the_first_still_runs_is_skipped(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given SQS hands a chunk's message to a second runner while the first is in the engine
    engine: Any = deps.evaluate
    real = engine.run
    overlapped: list[optimization_runner.ChunkOutcome] = []

    def run_with_a_duplicate(*args: Any, **kwargs: Any) -> Any:
        if not overlapped:
            (record,) = [c for c in deps.store.chunks(scenario.optimization_id) if c.status == "RUNNING"]
            message = ChunkMessage(scenario.optimization_id, record.chunk)
            overlapped.append(optimization_runner.handle_chunk(message, receive_count=2, deps=deps))
        return real(*args, **kwargs)

    engine.run = run_with_a_duplicate
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the duplicate saw a live runner (fresh heartbeat) and left the chunk alone
    assert overlapped == [optimization_runner.ChunkOutcome.SKIPPED]
    assert all(c.attempts == 1 for c in deps.store.chunks(scenario.optimization_id))
    scenario.assert_final()


# ---- between the result write and the status writes -------------------------------------------------------


def test_a_crash_after_the_chunk_result_write_reruns_into_the_same_object(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given the container dies after chunk 1's results were stored, before its status write
    fault = inject(deps.results, "put_chunk", lambda: Crash("killed after PutObject"), after=1, when=chunk_is(1))
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the redelivery (RUNNING → RUNNING after the recorded fault) ran it again into the same key, counted once
    assert fault.failures == 1
    chunk = scenario.api.chunk(scenario.optimization_id, 1)
    assert chunk is not None and (chunk.status, chunk.attempts) == ("SUCCEEDED", 2)
    scenario.assert_final()


def test_a_crash_after_the_chunk_status_write_counts_it_on_redelivery(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given the container dies after chunk 2 was marked SUCCEEDED, before it was counted
    fault = inject(
        deps.store, "mark_chunk_succeeded", lambda: Crash("killed after UpdateItem"), after=1, when=chunk_is(2)
    )
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the redelivery found it done, did not run it again, and counted it
    assert fault.failures == 1
    chunk = scenario.api.chunk(scenario.optimization_id, 2)
    assert chunk is not None and (chunk.status, chunk.attempts) == ("SUCCEEDED", 1)
    scenario.assert_final()


def test_a_crash_after_the_last_count_aggregates_on_redelivery(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given the container dies right after the count that completes the optimization, before the aggregation
    counts = Injected()
    real = deps.store.count_chunk

    def count_then_die(*args: Any, **kwargs: Any) -> Any:
        counted, record = real(*args, **kwargs)
        if counted and len(record.counted) == CHUNKS and not counts.failures:
            counts.failures += 1
            raise Crash("killed after the last count")
        return counted, record

    deps.store.count_chunk = count_then_die  # type: ignore[method-assign]
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the redelivery of that chunk found every chunk counted and aggregated
    assert counts.failures == 1
    scenario.assert_final()


def test_a_handled_chunk_message_that_was_never_deleted_is_skipped(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given every chunk handled, and chunk 0's message delivered once more (the poller died before the delete)
    scenario.submit()
    scenario.deliver_until_idle()
    scenario.stack.client("sqs").send_message(
        QueueUrl=scenario.stack.resources.optimization_queue_url,
        MessageBody=ChunkMessage(scenario.optimization_id, 0).encode(),
    )
    assert scenario.deliver() == []
    scenario.assert_final()


# ---- dead letters and replay --------------------------------------------------------------------------------


def test_s3_down_for_one_chunk_on_every_receive_is_dead_lettered_then_replayed(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given S3 refuses chunk 3's results on every receive
    fault = inject(
        deps.results, "put_chunk", lambda: s3_unavailable("PutObject"), before=MAX_RECEIVES, when=chunk_is(3)
    )
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the other chunks are counted, chunk 3 waits in the DLQ, and the optimization says so
    record = scenario.api.record(scenario.optimization_id)
    assert (record.status, record.dead_lettered, record.dead_chunks) == ("FAILED", True, {3})
    assert record.counted == {0, 1, 2} and record.error is not None
    assert "1 of 4 chunk(s) (3)" in record.error["message"]
    chunk = scenario.api.chunk(scenario.optimization_id, 3)
    assert chunk is not None and (chunk.status, chunk.dead_lettered) == ("FAILED", True)
    assert scenario.stack.chunk_queue_depth()["dlq"] == 1
    status = scenario.api.get(scenario.optimization_id).body
    assert status["progress"]["chunks_dead_lettered"] == 1 and status["error"]["type"] == "InfrastructureError"
    # When ops replay the DLQ (S3 is fine again)
    assert scenario.replay_dlq() == [f"{scenario.optimization_id}#3"]
    assert scenario.api.record(scenario.optimization_id).status == "RUNNING"
    scenario.deliver_until_idle()
    assert fault.failures == MAX_RECEIVES
    scenario.assert_final()
    assert scenario.replay_dlq() == []  # a rerun of the replay has nothing to do


def test_an_aggregation_failing_on_every_receive_is_dead_lettered_then_replayed(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given S3 refuses the table on every receive of the last chunk (and on the last receive's own try)
    fault = inject(deps.results, "put_table", lambda: s3_unavailable("PutObject"), before=MAX_RECEIVES + 1)
    scenario.submit()
    scenario.deliver_until_idle()
    # Then every chunk is counted, the optimization is FAILED (its aggregation) and the message is in the DLQ
    record = scenario.api.record(scenario.optimization_id)
    assert (record.status, record.dead_lettered, len(record.counted)) == ("FAILED", True, CHUNKS)
    assert record.error is not None and "aggregation" in record.error["message"]
    assert scenario.stack.chunk_queue_depth()["dlq"] == 1
    # When ops replay it: the redelivery aggregates, nothing runs again
    assert len(scenario.replay_dlq()) == 1
    scenario.deliver_until_idle()
    assert fault.failures == MAX_RECEIVES + 1
    assert all(c.attempts == 1 for c in deps.store.chunks(scenario.optimization_id))
    scenario.assert_final()


def test_the_last_receive_finds_the_chunk_stored_and_counts_it(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given chunk 0 stores its results every time but its SUCCEEDED write is throttled on every receive
    fault = inject(
        deps.store, "mark_chunk_succeeded", lambda: throttled("UpdateItem"), before=MAX_RECEIVES, when=chunk_is(0)
    )
    scenario.submit()
    scenario.deliver_until_idle()
    # Then the last receive found its results stored complete and counted it: nothing went to the DLQ
    assert fault.failures == MAX_RECEIVES
    chunk = scenario.api.chunk(scenario.optimization_id, 0)
    assert chunk is not None and (chunk.status, chunk.attempts) == ("SUCCEEDED", MAX_RECEIVES)
    scenario.assert_final()


def test_a_chunk_whose_runner_was_killed_records_its_combinations_failed(
    scenario: Scenario, deps: optimization_runner.ChunkDeps
) -> None:
    # Given chunk 1 RUNNING with a heartbeat long gone and no recorded fault (Lambda killed its runner)
    scenario.submit()
    long_ago = iso(utc_now() - timedelta(minutes=10))
    deps.store.client.update_item(
        TableName=deps.store.table_name,
        Key={"optimization_id": {"S": scenario.optimization_id}, "item": {"S": chunk_item(1)}},
        UpdateExpression="SET #s = :running, chunk = :n, attempts = :one, heartbeat_at = :t, started_at = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":running": {"S": "RUNNING"},
            ":n": {"N": "1"},
            ":one": {"N": "1"},
            ":t": {"S": long_ago},
        },
    )
    scenario.deliver_until_idle()
    # Then its combinations are failed RunnerKilled (running them again would die the same way), and it counts
    failed = [c for c in scenario.api.table(scenario.optimization_id)["combinations"] if c["status"] == "failed"]
    assert [c["index"] for c in failed] == [3, 4, 5]
    assert {c["error"]["type"] for c in failed} == {"RunnerKilled"}
    scenario.assert_final(failed=3)
