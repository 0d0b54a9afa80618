"""`backtest replay`: the message move task path (stubbed SQS), the receive → send → delete path on moto,
dry runs, selected ids, `--max`, kept messages, safe reruns and the deployed stack's outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from backtest_service.job_queue import encode_message
from backtest_service.job_store import JobStore
from backtest_service.jobs import JobRecord, JobSummaryUpdate, Status, iso, utc_now
from local.aws_resources import ResourceNames, create_resources
from local.embedded_aws import FAKE_CREDENTIALS, REAL_AWS_VARIABLES, fake_session
from ops.replay import (
    MoveTaskMover,
    MoveTaskUnavailable,
    ReceiveSendDeleteMover,
    ReplayError,
    ReplayTarget,
    replay,
    target_from_stack,
)

REGION = "us-east-1"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:backtest-jobs-dlq"
JOBS_ARN = "arn:aws:sqs:us-east-1:123456789012:backtest-jobs"


# ---- the message move task, against a stubbed SQS client -------------------------------------------


@pytest.fixture
def stubbed_sqs() -> Iterator[tuple[Any, Stubber]]:
    client = fake_session(REGION).client("sqs")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_move_task_starts_the_task_and_polls_until_it_completes(stubbed_sqs: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_sqs
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": JOBS_ARN},
    )
    for status, moved in (("RUNNING", 1), ("COMPLETED", 3)):
        stubber.add_response(
            "list_message_move_tasks",
            {
                "Results": [
                    {
                        "TaskHandle": "handle-1",
                        "Status": status,
                        "SourceArn": DLQ_ARN,
                        "DestinationArn": JOBS_ARN,
                        "ApproximateNumberOfMessagesMoved": moved,
                        "ApproximateNumberOfMessagesToMove": 3,
                    }
                ]
            },
            {"SourceArn": DLQ_ARN, "MaxResults": 10},
        )
    progress: list[str] = []
    sleeps: list[float] = []

    moved = MoveTaskMover(
        client, DLQ_ARN, JOBS_ARN, poll_seconds=0.5, on_progress=progress.append, sleep=sleeps.append
    ).move_all()

    assert moved == 3
    assert sleeps == [0.5]
    assert progress[-2:] == ["move task RUNNING: 1 of 3 moved", "move task COMPLETED: 3 of 3 moved"]


@pytest.mark.parametrize("code", ["UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"])
def test_move_task_reports_unavailable_so_replay_falls_back(stubbed_sqs: tuple[Any, Stubber], code: str) -> None:
    client, stubber = stubbed_sqs
    stubber.add_client_error("start_message_move_task", service_error_code=code, http_status_code=400)

    with pytest.raises(MoveTaskUnavailable):
        MoveTaskMover(client, DLQ_ARN, JOBS_ARN, sleep=lambda _: None).move_all()


def test_a_failed_move_task_is_an_error_with_its_reason(stubbed_sqs: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_sqs
    stubber.add_response("start_message_move_task", {"TaskHandle": "h"})
    stubber.add_response(
        "list_message_move_tasks",
        {"Results": [{"TaskHandle": "h", "Status": "FAILED", "FailureReason": "AccessDenied on the jobs queue"}]},
    )

    with pytest.raises(ReplayError, match="FAILED: AccessDenied on the jobs queue"):
        MoveTaskMover(client, DLQ_ARN, JOBS_ARN, sleep=lambda _: None).move_all()


def test_moto_has_no_move_task_and_says_so() -> None:
    with mock_aws():
        client = fake_session(REGION).client("sqs")
        with pytest.raises(MoveTaskUnavailable):
            MoveTaskMover(client, DLQ_ARN, JOBS_ARN).move_all()


# ---- replay on moto -------------------------------------------------------------------------------


class World:
    """The resources on moto, a job store on them, and helpers to put jobs in each state."""

    def __init__(self, names: ResourceNames) -> None:
        self.names = names
        session = boto3.session.Session(region_name=REGION)
        self.sqs = session.client("sqs")
        self.store = JobStore(names.jobs_table, session.client("dynamodb"))
        self.target = ReplayTarget(
            sqs=self.sqs,
            jobs=self.store,
            jobs_queue_url=names.jobs_queue_url,
            dlq_url=names.dlq_url,
            receive_wait_seconds=0,
        )

    def job(self, execution_id: str, status: Status, *, dead_lettered: bool = True) -> str:
        record = JobRecord(
            execution_id=execution_id,
            owner="cognito:ops-test",
            status=Status.QUEUED,
            created_at=iso(utc_now()),
            symbol="AAPL",
            timeframe="1d",
        )
        self.store.put_queued(record)
        if status is Status.QUEUED:
            return execution_id
        self.store.start(execution_id)
        if status is Status.FAILED:
            error = {"type": "InfrastructureError" if dead_lettered else "StrategyError", "message": "x"}
            assert self.store.mark_failed(execution_id, error, dead_lettered=dead_lettered)
        elif status is Status.SUCCEEDED:
            summary = JobSummaryUpdate(
                performance_metrics={"total_return_percent": 1.0},
                trade_summary={"total_trades": 1},
                market_data_stats={"data_points": 2},
                result_key=f"results/{execution_id}.json",
                timings={},
                engine_version="test",
                data_fingerprint="f",
            )
            assert self.store.mark_succeeded(execution_id, summary)
        return execution_id

    def dead_letter(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.names.dlq_url, MessageBody=body)

    def bodies(self, url: str) -> list[str]:
        """Every visible message body of the queue (left visible)."""
        held: list[Any] = []
        while True:
            out = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            if not out.get("Messages"):
                break
            held += out["Messages"]
        for m in held:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        return [m["Body"] for m in held]

    def ids(self, url: str) -> list[str]:
        return sorted(json.loads(b).get("execution_id", b) if b.startswith("{") else b for b in self.bodies(url))

    def status(self, execution_id: str) -> Status:
        job = self.store.get(execution_id)
        assert job is not None
        return job.status


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in REAL_AWS_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield World(create_resources(REGION, prefix="replay-test"))


def test_replay_resets_dead_lettered_jobs_and_moves_their_messages_falling_back_on_moto(world: World) -> None:
    # Given two dead-lettered jobs in the DLQ
    a = world.job("job-a", Status.FAILED)
    b = world.job("job-b", Status.FAILED)
    world.dead_letter(encode_message(a), encode_message(b))

    # When replaying everything (moto has no move task: the fallback moves message by message)
    lines: list[str] = []
    summary = replay(world.target, out=lines.append)

    # Then both jobs are QUEUED again, their messages are on the jobs queue, the DLQ is empty
    assert sorted(summary.moved) == [a, b]
    assert summary.method == ReceiveSendDeleteMover.method
    assert any("not available" in line for line in lines)
    assert world.status(a) is Status.QUEUED and world.status(b) is Status.QUEUED
    assert world.ids(world.names.jobs_queue_url) == [a, b]
    assert world.ids(world.names.dlq_url) == []


def test_replay_uses_the_move_task_after_resetting_the_jobs(world: World) -> None:
    # Given dead-lettered jobs, one stuck RUNNING (its runner died on the last receive)
    a = world.job("job-a", Status.FAILED)
    b = world.job("job-b", Status.RUNNING)
    world.dead_letter(encode_message(a), encode_message(b))
    seen_at_move: dict[str, Status] = {}

    class FakeMoveTask:
        """Stands in for SQS's move task: checks the jobs were reset first, then moves every message."""

        method = "fake move task"

        def move_all(self) -> int:
            seen_at_move.update({x: world.status(x) for x in (a, b)})
            return ReceiveSendDeleteMover(world.sqs, world.names.dlq_url, world.names.jobs_queue_url).move_all()

    summary = replay(world.target, move_task=FakeMoveTask(), out=lambda _: None)

    assert summary.method == "fake move task"
    assert sorted(summary.moved) == [a, b]
    assert seen_at_move == {a: Status.QUEUED, b: Status.QUEUED}
    assert world.ids(world.names.jobs_queue_url) == [a, b]
    assert world.ids(world.names.dlq_url) == []


def test_dry_run_changes_nothing(world: World) -> None:
    a = world.job("job-a", Status.FAILED)
    done = world.job("job-done", Status.SUCCEEDED)
    world.dead_letter(encode_message(a), encode_message(done))
    lines: list[str] = []

    summary = replay(world.target, dry_run=True, out=lines.append)

    assert summary.moved == [a] and summary.already_succeeded == [done]
    assert world.status(a) is Status.FAILED
    assert world.ids(world.names.dlq_url) == [a, done]  # visible again at once
    assert world.ids(world.names.jobs_queue_url) == []
    assert any(a in line and "replay" in line for line in lines)


def test_selected_ids_move_only_their_messages(world: World) -> None:
    a = world.job("job-a", Status.FAILED)
    b = world.job("job-b", Status.FAILED)
    c = world.job("job-c", Status.FAILED)
    world.dead_letter(encode_message(a), encode_message(b), encode_message(c))

    summary = replay(world.target, execution_ids=[b, "job-nowhere"], out=lambda _: None)

    assert summary.moved == [b]
    assert summary.not_found == ["job-nowhere"]
    assert world.status(a) is Status.FAILED and world.status(b) is Status.QUEUED
    assert world.ids(world.names.jobs_queue_url) == [b]
    assert world.ids(world.names.dlq_url) == [a, c]


def test_max_limits_how_many_are_moved(world: World) -> None:
    ids = [world.job(f"job-{i}", Status.FAILED) for i in range(5)]
    world.dead_letter(*(encode_message(i) for i in ids))

    summary = replay(world.target, max_messages=2, out=lambda _: None)

    assert len(summary.moved) == 2
    assert len(world.ids(world.names.jobs_queue_url)) == 2
    assert len(world.ids(world.names.dlq_url)) == 3


def test_succeeded_jobs_are_not_run_twice_and_unreplayable_messages_are_kept(world: World) -> None:
    # Given a DLQ with a finished job, a duplicate, a strategy failure, an unknown job and garbage
    a = world.job("job-a", Status.FAILED)
    done = world.job("job-done", Status.SUCCEEDED)
    bad = world.job("job-bad", Status.FAILED, dead_lettered=False)
    world.dead_letter(
        encode_message(a),
        encode_message(a),
        encode_message(done),
        encode_message(bad),
        encode_message("job-expired"),
        "not json",
    )

    summary = replay(world.target, out=lambda _: None)

    # Then only job-a is moved (once); the finished job's message is deleted; the rest stay
    assert summary.moved == [a]
    assert summary.duplicates == 1
    assert summary.already_succeeded == [done]
    assert bad in summary.kept and "job-expired" in summary.kept and len(summary.kept) == 3
    assert world.ids(world.names.jobs_queue_url) == [a]
    assert world.ids(world.names.dlq_url) == sorted([bad, "job-expired", "not json"])
    assert world.status(done) is Status.SUCCEEDED and world.status(bad) is Status.FAILED


def test_rerunning_replay_is_safe(world: World) -> None:
    a = world.job("job-a", Status.FAILED)
    world.dead_letter(encode_message(a))

    first = replay(world.target, out=lambda _: None)
    second = replay(world.target, out=lambda _: None)
    by_id = replay(world.target, execution_ids=[a], out=lambda _: None)

    assert first.moved == [a]
    assert second.moved == [] and second.requeued == []
    assert by_id.moved == [] and by_id.requeued == [] and by_id.not_found == [a]  # it is QUEUED, not dead
    assert world.ids(world.names.jobs_queue_url) == [a]


def test_a_selected_dead_lettered_job_whose_message_is_gone_is_requeued(world: World) -> None:
    a = world.job("job-a", Status.FAILED)  # dead-lettered, but its DLQ message expired

    summary = replay(world.target, execution_ids=[a], out=lambda _: None)

    assert summary.requeued == [a]
    assert world.status(a) is Status.QUEUED
    assert world.ids(world.names.jobs_queue_url) == [a]


def test_a_job_queued_by_an_interrupted_replay_is_moved_without_a_reset(world: World) -> None:
    # Given a job an earlier replay reset to QUEUED before it crashed, its message still in the DLQ
    a = world.job("job-a", Status.QUEUED)
    world.dead_letter(encode_message(a))

    summary = replay(world.target, out=lambda _: None)

    assert summary.moved == [a]
    assert world.ids(world.names.jobs_queue_url) == [a]


# ---- the deployed stack's outputs -----------------------------------------------------------------


def _stack_template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "marker"}}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


def test_target_from_stack_reads_the_cloudformation_outputs(world: World) -> None:
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    cfn.create_stack(
        StackName="BacktestService-test",
        TemplateBody=_stack_template(
            {
                "JobsQueueUrl": world.names.jobs_queue_url,
                "DeadLetterQueueUrl": world.names.dlq_url,
                "JobsTableName": world.names.jobs_table,
            }
        ),
    )

    target = target_from_stack("BacktestService-test", region=REGION)

    assert target.jobs_queue_url == world.names.jobs_queue_url
    assert target.dlq_url == world.names.dlq_url
    assert target.jobs.table_name == world.names.jobs_table
    assert target.move_task_supported is True


def test_target_from_stack_names_missing_outputs(world: World) -> None:
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    cfn.create_stack(StackName="Old", TemplateBody=_stack_template({"JobsQueueUrl": world.names.jobs_queue_url}))

    with pytest.raises(ReplayError, match="DeadLetterQueueUrl, JobsTableName"):
        target_from_stack("Old", region=REGION)
    with pytest.raises(ReplayError, match="cannot read stack"):
        target_from_stack("NoSuchStack", region=REGION)


def test_the_command_needs_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    from local.cli import main

    assert main(["replay", "--dry-run"]) == 2
    assert main(["replay", "--stack-name", "S", "--local-endpoint", "http://127.0.0.1:1"]) == 2
    assert "either --stack-name" in capsys.readouterr().err
