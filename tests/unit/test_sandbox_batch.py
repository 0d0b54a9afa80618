"""The trusted side of a batch job against a forged child: every frame is capped and checked in place,
a broken protocol fails only the combination it happened in, and a new child runs the rest."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from backtest_engine.sandbox import SandboxLimits, wire
from backtest_engine.sandbox.batch import run_batch
from backtest_engine.sandbox.supervisor import SandboxUnavailable

N = 16
Script = Callable[[int], None]  # writes frames to the answer fd


def layers(fd: int) -> None:
    wire.write_frame(fd, wire.LAYERS, json.dumps({"core": True}).encode())


def combination(fd: int, k: int, signals: np.ndarray | None = None) -> None:
    wire.write_frame(fd, wire.COMBINATION, wire.COMBINATION_BODY.pack(k))
    wire.write_frame(fd, wire.SIGNALS, np.ones(N) if signals is None else signals)
    wire.write_frame(fd, wire.LOGS, wire.encode_logs([]))
    wire.write_frame(fd, wire.DONE)


class ForgedSupervisor:
    """Stands in for `Supervisor`: each spawn runs the next script as the 'child' in a thread."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = list(scripts)
        self.jobs: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []

    def _spawn(self, flags: int, bars_fd: int) -> tuple[int, int, int]:
        script = self.scripts.pop(0)
        job_read, job_write = os.pipe()
        answer_read, answer_write = os.pipe()

        def child() -> None:
            try:
                payload = wire.FrameReader(job_read, {wire.JOB: 1 << 30}).read().payload
                self.jobs.append(wire.read_job(payload)[0])
                script(answer_write)
            except (BrokenPipeError, OSError):
                pass
            finally:
                os.close(job_read)
                os.close(answer_write)

        thread = threading.Thread(target=child, daemon=True)
        thread.start()
        self.threads.append(thread)
        return len(self.threads), job_write, answer_read

    def _wait_exit(self, pid: int, timeout: float) -> int | None:
        return 0

    def kill(self, pid: int) -> None:
        pass

    def _detach(self, pid: int) -> None:
        pass


def run(scripts: list[Script], m: int) -> tuple[list[Any], ForgedSupervisor]:
    supervisor = ForgedSupervisor(scripts)
    header = {"bars": N, "source": "", "style": "vectorized"}
    columns = {name: np.zeros(N) for name in wire.BAR_COLUMNS}
    limits = SandboxLimits(wall_seconds=5)
    items = list(
        run_batch(supervisor, header, columns, [{"k": k} for k in range(m)], limits, code=b"")  # type: ignore[arg-type]
    )
    return items, supervisor


def test_a_well_behaved_child_answers_every_combination_in_order():
    def good(fd: int) -> None:
        layers(fd)
        for k in range(3):
            combination(fd, k)

    items, supervisor = run([good], 3)
    assert [i.index for i in items] == [0, 1, 2]
    assert all(i.answer is not None and i.answer.signals is not None and i.error is None for i in items)
    assert supervisor.jobs[0]["batch"] == [{"k": 0}, {"k": 1}, {"k": 2}]
    assert supervisor.jobs[0]["limits"]["cpu_seconds"] == 3 * SandboxLimits().cpu_seconds


def rest_from(start: int, m: int) -> Script:
    def script(fd: int) -> None:
        layers(fd)
        for k in range(m - start):
            combination(fd, k)

    return script


@pytest.mark.parametrize(
    "forge, reason",
    [
        (lambda fd: wire.write_frame(fd, wire.SIGNALS, np.ones(N + 1)), "exceeds its cap"),
        (lambda fd: wire.write_frame(fd, wire.SIGNALS, np.ones(N - 1)), "one float64 per bar"),
        (lambda fd: wire.write_frame(fd, wire.COMBINATION, wire.COMBINATION_BODY.pack(5)), "out of place"),
        (lambda fd: wire.write_frame(fd, wire.LAYERS, b"{}"), "out of place"),
        (lambda fd: wire.write_frame(fd, wire.REPORT, b"{}"), "out of place"),
        (lambda fd: wire.write_frame(fd, 99, b""), "not expected"),
        (lambda fd: combination_frames_twice(fd), "out of place"),
    ],
)
def test_a_forged_frame_fails_that_combination_only_and_a_new_child_runs_the_rest(forge, reason):
    # Given a child that answers combination 0, then forges a frame inside combination 1
    def forged(fd: int) -> None:
        layers(fd)
        combination(fd, 0)
        wire.write_frame(fd, wire.COMBINATION, wire.COMBINATION_BODY.pack(1))
        forge(fd)

    # When the batch of 4 runs
    items, supervisor = run([forged, rest_from(2, 4)], 4)
    # Then combination 1 failed as the strategy's fault, and the second child ran 2 and 3
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert items[1].error is not None and type(items[1].error).__name__ == "StrategyError"
    assert reason in items[1].error.message
    assert all(items[k].answer is not None for k in (0, 2, 3))
    assert supervisor.jobs[1]["batch"] == [{"k": 2}, {"k": 3}]


def combination_frames_twice(fd: int) -> None:
    wire.write_frame(fd, wire.SIGNALS, np.ones(N))
    wire.write_frame(fd, wire.SIGNALS, np.ones(N))


def test_combinations_out_of_order_are_refused():
    def skipping(fd: int) -> None:
        layers(fd)
        combination(fd, 1)  # skips 0

    items, _ = run([skipping, rest_from(1, 2)], 2)
    assert items[0].error is not None and "out of order" in items[0].error.message
    assert items[1].answer is not None


def test_a_child_that_dies_mid_batch_fails_its_combination_and_the_rest_still_run():
    def dies(fd: int) -> None:
        layers(fd)
        combination(fd, 0)
        wire.write_frame(fd, wire.COMBINATION, wire.COMBINATION_BODY.pack(1))
        # ... and the pipe closes: the child is gone

    items, _ = run([dies, rest_from(2, 3)], 3)
    assert items[1].error is not None and items[2].answer is not None


def test_a_child_that_dies_before_confining_itself_is_an_infrastructure_fault():
    with pytest.raises(SandboxUnavailable):
        run([lambda fd: None], 2)
