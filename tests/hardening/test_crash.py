"""Crash tests of real processes: a worker SIGKILLed in the middle of a job, as Lambda ends a runtime that
timed out or ran out of memory.

Three processes, as on AWS: the embedded AWS alone (`backtest local-aws`: moto, which outlives the workers
as SQS and DynamoDB do), and two `backtest local --aws-endpoint` servers in turn (the API and the workers,
like two Lambda execution environments). The first receives the job with a short visibility timeout and
is killed while the sandbox child runs the strategy; then

- the sandbox's zygote and child die with it (parent-death signal where `prctl` works; where it does not,
  as on Lambda, the zygote sees its channel close and kills its children: the `lambda_like` test);
- nothing is left in its TMPDIR (the runner keeps no file: bars travel in a sealed memfd);
- the job is delivered again once the visibility timeout passed, runs once more and ends exactly once:
  SUCCEEDED on its second attempt, one result object, nothing left in the queue or the dead-letter queue.

And a terminal's Ctrl-C (SIGINT to the server's process group) lets the running job finish.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backtest_service import topology
from backtest_service.result_store import result_key
from local.aws_resources import bucket_name, queue_names, table_name
from local.embedded_aws import DEFAULT_REGION, fake_session
from tests.processes import BACKTEST, LAMBDA_LIKE, Process, descendants, running, wait_until_gone
from tests.support import Client

pytestmark = [pytest.mark.xdist_group("crash"), pytest.mark.slow]

VISIBILITY_SECONDS = 5
# About 1.5 s of strategy per run on an idle machine (a few times that on a loaded one): long enough to be
# killed in the middle, short enough to run again.
SLOW = """\
def generate_signals(data, params):
    x = 0
    for i in range(params.get("n", 1)):
        x += i % 7
    return np.where(data.close.values > 0, 1.0, 0.0)
"""
SLOW_LOOPS = 4_000_000


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    """`backtest local-aws` in its own process: the endpoint."""
    with running("local-aws", [*BACKTEST, "local-aws", "--port", "0", "--expiry-interval", "3600"]) as process:
        _, match = process.wait_for(r"moto at (http://\S+)")
        yield match.group(1)


def server(
    name: str, endpoint: str, tmpdir: Path, *args: str, wrapper: list[str] | None = None
) -> Any:  # a context manager of Process
    tmpdir.mkdir()
    command = [*(wrapper or []), *BACKTEST, "local", "--port", "0", "--workers", "1", "--quiet"]
    return running(name, [*command, "--aws-endpoint", endpoint, *args], env={"TMPDIR": str(tmpdir)})


def sandbox_of(worker: Process, timeout: float = 30.0) -> dict[tuple[int, int], int]:
    """The worker's descendants once a sandbox child (a grandchild: runner → zygote → child) runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        below = descendants(worker.pid)
        if any(depth >= 2 for depth in below.values()):
            return below
        time.sleep(0.02)
    raise AssertionError(f"no sandbox child under {worker.name} within {timeout:.0f} s:\n{worker.output()}")


def kill_mid_job(worker: Process, client: Client, execution_id: str) -> list[tuple[int, int]]:
    """Wait until the job runs in a sandbox child of `worker`, SIGKILL the worker; its descendants then."""
    client.wait(execution_id, until=("RUNNING",), timeout=60)  # after the cold start's sandbox probe
    sandbox = sandbox_of(worker)
    assert client.status(execution_id)["status"] == "RUNNING"
    worker.kill9()
    return list(sandbox)


def test_a_worker_killed_mid_job_is_redelivered_and_the_job_ends_once(aws: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with server("worker-1", aws, tmp_path / "tmp-1", "--visibility-timeout", str(VISIBILITY_SECONDS)) as first:
        _, url = first.wait_for(r"backtest local: (http://\S+)")
        client = Client(url.group(1), "crash-test")
        submitted = time.monotonic()
        execution_id = client.submit(SLOW, parameters={"n": SLOW_LOOPS})
        sandbox = kill_mid_job(first, client, execution_id)
        killed = time.monotonic()
        # Given the worker was SIGKILLed, Then its zygote and the strategy's child die with it, at once.
        assert len(sandbox) >= 2
        assert wait_until_gone(sandbox, timeout=5) == []
        assert list((tmp_path / "tmp-1").iterdir()) == []
    assert first.matching(rf"job {execution_id}\s+running \(receive 1\)")
    assert not first.matching("SUCCEEDED|FAILED")

    with server("worker-2", aws, tmp_path / "tmp-2") as second:
        _, url = second.wait_for(r"backtest local: (http://\S+)")
        client = Client(url.group(1), "crash-test")
        # When SQS makes the message visible again, Then the second worker runs it and it ends once.
        job = client.wait(execution_id, timeout=90)
        redelivered, _ = second.wait_for(rf"job {execution_id}\s+running \(receive 2\)", timeout=5)
        assert redelivered - submitted >= VISIBILITY_SECONDS - 0.5  # not before the visibility timeout
        assert job["status"] == "SUCCEEDED", job
        assert job["attempts"] == 2
        second.wait_for(rf"job {execution_id}\s+SUCCEEDED", timeout=5)
        assert len(second.matching(rf"job {execution_id}\s+(SUCCEEDED|FAILED)")) == 1
        assert_one_result_and_empty_queues(aws, execution_id)
        survivors = list(descendants(second.pid))
    # A clean stop (SIGTERM) ends the second worker's sandbox too, and leaves no file either.
    assert second.popen.returncode == 0, second.output()
    assert wait_until_gone(survivors, timeout=10) == []
    assert list((tmp_path / "tmp-2").iterdir()) == []
    took = time.monotonic() - started
    print(
        f"crash test: killed {killed - submitted:.1f} s after submit, redelivered after "
        f"{redelivered - submitted:.1f} s, whole test {took:.1f} s"
    )


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64",
    reason="the Lambda-like seccomp filter is written for x86-64 Linux",
)
def test_without_prctl_as_on_lambda_the_sandbox_still_dies_with_its_worker(aws: str, tmp_path: Path) -> None:
    # Given a worker whose prctl calls all fail (no parent-death signal anywhere, as on Lambda)
    with server(
        "worker-lambda-like",
        aws,
        tmp_path / "tmp",
        "--visibility-timeout",
        "600",
        "--log-level",
        "INFO",
        wrapper=LAMBDA_LIKE,
    ) as worker:
        _, url = worker.wait_for(r"backtest local: (http://\S+)")
        client = Client(url.group(1), "crash-test-lambda-like")
        execution_id = client.submit(SLOW, parameters={"n": SLOW_LOOPS})
        sandbox = kill_mid_job(worker, client, execution_id)
        # Then the zygote, seeing its channel to the dead runner close, kills the child and exits.
        assert wait_until_gone(sandbox, timeout=10) == []
        assert list((tmp_path / "tmp").iterdir()) == []
    (_, layers_line), *_ = worker.matching('"message":"strategy sandbox layers"')
    layers = json.loads(layers_line)["sandbox"]
    assert layers["core"] is True
    assert layers["parent_death_signal"] is False and layers["runner_non_dumpable"] is False


def test_ctrl_c_lets_the_running_job_finish(aws: str, tmp_path: Path) -> None:
    # Given a job running in the sandbox of `backtest local` in a terminal,
    with server("worker-ctrl-c", aws, tmp_path / "tmp", "--visibility-timeout", "600") as worker:
        _, url = worker.wait_for(r"backtest local: (http://\S+)")
        client = Client(url.group(1), "crash-test-ctrl-c")
        execution_id = client.submit(SLOW, parameters={"n": SLOW_LOOPS})
        client.wait(execution_id, until=("RUNNING",), timeout=60)
        sandbox = list(sandbox_of(worker))
        # When the terminal sends Ctrl-C (SIGINT to its foreground process group: the server's),
        os.killpg(worker.pid, signal.SIGINT)
        # Then the server stops taking requests, lets the job finish, and exits cleanly: the sandbox's
        # zygote sits in its own process group, so the signal does not kill the job under it.
        assert worker.popen.wait(timeout=90) == 0, worker.output()
    stopping, _ = worker.wait_for(r"stopping \.\.\.", timeout=1)
    finished, _ = worker.wait_for(rf"job {execution_id}\s+SUCCEEDED .*\(attempt 1\)", timeout=1)
    assert stopping < finished
    assert wait_until_gone(sandbox, timeout=10) == []
    item = (
        fake_session(DEFAULT_REGION)
        .client("dynamodb", endpoint_url=aws)
        .get_item(TableName=table_name(topology.JOBS_TABLE), Key={"execution_id": {"S": execution_id}})["Item"]
    )
    assert item["status"] == {"S": "SUCCEEDED"}


def assert_one_result_and_empty_queues(endpoint: str, execution_id: str) -> None:
    session = fake_session(DEFAULT_REGION)
    s3 = session.client("s3", endpoint_url=endpoint)
    bucket = bucket_name(topology.RESULTS_BUCKET, DEFAULT_REGION)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{topology.RESULTS_PREFIX}{execution_id}")
    assert [obj["Key"] for obj in listed.get("Contents", [])] == [result_key(execution_id)]
    sqs = session.client("sqs", endpoint_url=endpoint)
    for name in queue_names(topology.JOBS_QUEUE):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, name
