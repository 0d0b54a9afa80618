"""How long the sandbox's processes live: nothing outlives its zygote, the zygote outlives no runner, and
neither a terminal's Ctrl-C nor a dead zygote turns into a slow or wrongly typed job failure.

(tests/hardening/test_crash.py SIGKILLs whole worker processes, with and without `prctl`.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from backtest_engine.sandbox import SandboxLimits, wire
from backtest_engine.sandbox.supervisor import SandboxUnavailable, Supervisor, barless_job
from backtest_engine.sandbox.zygote import FLAG_UNRESTRICTED
from tests.processes import alive, descendants, process_id, wait_until_gone

pytestmark = pytest.mark.xdist_group("sandbox-isolation")

LIMITS = SandboxLimits(cpu_seconds=30, wall_seconds=60, memory_mb=512)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = Supervisor(allow_unrestricted=True)
    supervisor.layers()  # the zygote is up
    yield supervisor
    supervisor.close()


def zygote_of(supervisor: Supervisor) -> int:
    pid = supervisor.zygote_pid
    assert pid is not None
    return pid


def test_the_zygote_has_its_own_process_group(supervisor: Supervisor) -> None:
    # A terminal's Ctrl-C goes to the foreground process group: the runner's, which lets running jobs finish.
    # The zygote is outside it, or it would die first and take every running job with it.
    zygote = zygote_of(supervisor)
    assert os.getpgid(zygote) == zygote
    assert os.getpgid(zygote) != os.getpgrp()


def test_a_child_dies_with_its_zygote_before_it_is_even_confined(supervisor: Supervisor) -> None:
    # Given a child forked but still waiting for its job (not confined yet: no limits, no seccomp),
    zygote = zygote_of(supervisor)
    _, columns = barless_job("")
    bars = wire.write_bars(columns)
    try:
        pid, job_write, answer_read = supervisor._spawn(FLAG_UNRESTRICTED, bars)
    finally:
        os.close(bars)
    child = process_id(pid)
    assert child is not None and alive(child)
    try:
        # When the zygote is killed, Then the child dies with it, although we still hold its job pipe open.
        os.kill(zygote, signal.SIGKILL)
        assert wait_until_gone([child], timeout=5) == []
    finally:
        os.close(job_write)
        os.close(answer_read)


def test_a_zygote_killed_mid_job_fails_the_job_at_once_and_the_next_job_runs(supervisor: Supervisor) -> None:
    zygote = zygote_of(supervisor)
    header, columns = barless_job("while True:\n    pass\n")
    outcome: Future[BaseException | None] = Future()

    def run() -> None:
        try:
            supervisor.run(header, columns, LIMITS, flags=FLAG_UNRESTRICTED)
            outcome.set_result(None)
        except BaseException as exc:
            outcome.set_result(exc)

    assert wait_until_gone(list(descendants(zygote)), timeout=10) == []  # the start-up probe's child is gone
    threading.Thread(target=run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not descendants(zygote):
        assert time.monotonic() < deadline, "the job's child never started"
        time.sleep(0.02)
    time.sleep(0.5)  # inside the strategy's loop
    children = list(descendants(zygote))
    assert children and not outcome.done()
    # When the zygote dies (OOM-killed, or signalled by a strategy that got out),
    os.kill(zygote, signal.SIGKILL)
    killed = time.monotonic()
    error = outcome.result(timeout=30)
    # Then the job fails as the infrastructure fault it is (retried by SQS), within a moment, not after
    # two 10-second waits for an exit report that can never come; its child is gone.
    assert isinstance(error, SandboxUnavailable), error
    assert time.monotonic() - killed < 5
    assert wait_until_gone(children, timeout=5) == []
    # And the next job starts a new zygote and runs.
    answer = supervisor.run(*barless_job("result = {'ran': True}\n"), LIMITS, flags=FLAG_UNRESTRICTED)
    assert answer.report == {"ran": True}
    assert supervisor.zygote_pid not in (None, zygote)
