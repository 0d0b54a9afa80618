"""`run_isolated`: results and typed errors across the process boundary, limits inside the child, and a
parent that survives every way a child can end."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import resource
import signal
import socket
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest_engine.errors import (
    EngineError,
    InvalidSignals,
    StrategyError,
    StrategyMemoryError,
    StrategyTimeout,
)
from backtest_engine.sandbox import SandboxLimits, StrategyLog, boundary, compile_strategy, run_isolated

QUICK = SandboxLimits(cpu_seconds=5, wall_seconds=30, memory_mb=512)


def strategy_target(body: str, limits: SandboxLimits = QUICK):
    """A target that runs a restricted generate_signals, the way the engine's child does."""
    strategy = compile_strategy(
        "def generate_signals(data, params):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )

    def target() -> Any:
        namespace = strategy.load(StrategyLog(limits.max_log_lines, limits.max_log_bytes))
        return namespace["generate_signals"](None, {})

    return target


def zombie_children() -> list[int]:
    """Pids of this process's children that exited but were never reaped."""
    me, zombies = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            zombies.append(int(entry))
    return zombies


def assert_parent_healthy() -> None:
    # The parent can run the next job right away, and no child is left behind
    assert run_isolated(lambda: "next job", QUICK) == "next job"
    assert multiprocessing.active_children() == []
    assert zombie_children() == []


# ---- results -------------------------------------------------------------------------------------------


def test_returns_the_targets_result():
    assert run_isolated(lambda: {"answer": 42, "items": [1, 2.5, "x", None, (1, 2)]}, QUICK) == {
        "answer": 42,
        "items": [1, 2.5, "x", None, (1, 2)],
    }
    assert_parent_healthy()


def test_returns_large_arrays_intact_and_writable():
    # Given three arrays of one million float64 made in the child
    def target() -> list[np.ndarray]:
        rng = np.random.default_rng(3)
        return [rng.normal(size=1_000_000) for _ in range(3)]

    # When they come back
    arrays = run_isolated(target, QUICK)
    # Then they equal what the child computed and can be used like any array
    expected = target()
    for got, want in zip(arrays, expected, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable
        got[0] = 0.0


def test_returns_restricted_strategy_results():
    assert run_isolated(strategy_target("return np.cumsum([1.0, 2.0, 3.0]).tolist()"), QUICK) == [1.0, 3.0, 6.0]


# ---- errors raised in the child -------------------------------------------------------------------------


def test_user_exception_comes_back_as_strategy_error_with_line():
    target = strategy_target("x = 1\ny = 0\nreturn x / y")
    with pytest.raises(StrategyError) as caught:
        run_isolated(target, QUICK)
    assert caught.value.line == 4
    assert caught.value.message == "line 4: ZeroDivisionError: division by zero"
    assert_parent_healthy()


def test_engine_errors_raised_in_the_child_keep_their_type_and_line():
    def target() -> None:
        raise InvalidSignals("signal 2.0 at bar 3 is out of range", line=9)

    with pytest.raises(InvalidSignals) as caught:
        run_isolated(target, QUICK)
    assert (caught.value.message, caught.value.line) == ("signal 2.0 at bar 3 is out of range", 9)


def test_engine_bug_in_the_child_is_an_engine_error_not_a_strategy_fault():
    def target() -> None:
        raise KeyError("internal")

    with pytest.raises(EngineError) as caught:
        run_isolated(target, QUICK)
    assert type(caught.value) is EngineError
    assert "KeyError" in caught.value.message


# ---- limits --------------------------------------------------------------------------------------------


def test_infinite_loop_hits_the_cpu_limit():
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=30)
    started = time.monotonic()
    with pytest.raises(StrategyTimeout, match="CPU-time limit of 1 s"):
        run_isolated(strategy_target("n = 0\nwhile True:\n    n += 1", limits), limits)
    assert time.monotonic() - started < 25  # ended by the CPU limit, well before the wall-clock limit
    assert_parent_healthy()


def test_sleeping_child_hits_the_wall_clock_limit():
    limits = SandboxLimits(cpu_seconds=30, wall_seconds=1)
    with pytest.raises(StrategyTimeout, match="wall-clock limit of 1 s"):
        run_isolated(lambda: time.sleep(60), limits)
    assert_parent_healthy()


@pytest.mark.parametrize(
    "body",
    [
        "x = [0] * (10 ** 9)",
        "blocks = []\nwhile True:\n    blocks.append(np.ones(1_000_000))",
        "s = 'x' * (2 * 10 ** 9)",
    ],
    ids=["one_huge_list", "growing_arrays", "huge_string"],
)
def test_memory_bomb_is_a_strategy_memory_error(body: str):
    limits = SandboxLimits(cpu_seconds=20, wall_seconds=60, memory_mb=200)
    with pytest.raises(StrategyMemoryError):
        run_isolated(strategy_target(body, limits), limits)
    assert_parent_healthy()


def test_deep_recursion_is_a_strategy_error_naming_recursion():
    source = "def deep(n):\n    return deep(n + 1)\n\ndef generate_signals(data, params):\n    return deep(0)\n"
    strategy = compile_strategy(source)
    with pytest.raises(StrategyError) as caught:
        run_isolated(lambda: strategy.load(StrategyLog(10, 1000))["generate_signals"](None, {}), QUICK)
    assert caught.value.line == 2
    assert "RecursionError" in caught.value.message
    assert_parent_healthy()


def test_child_limits_are_set():
    limits = SandboxLimits(cpu_seconds=3.2, wall_seconds=30, memory_mb=300, recursion_limit=1234)

    def target() -> dict[str, Any]:
        return {
            "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            "fsize": resource.getrlimit(resource.RLIMIT_FSIZE),
            "core": resource.getrlimit(resource.RLIMIT_CORE),
            "as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "recursion": sys.getrecursionlimit(),
        }

    inside = run_isolated(target, limits)
    assert inside["cpu"] == 4  # whole seconds, rounded up
    assert inside["fsize"] == (0, 0) and inside["core"] == (0, 0)
    assert inside["recursion"] == 1234
    # RLIMIT_AS is relative: the child's size at fork plus the budget (raised by 64 MiB headroom only after
    # the target returned, to report); so it lies within [budget, VmSize + budget + headroom]
    assert 300 << 20 < inside["as"] < (300 << 20) + (64 << 20) + _vm_size() * 2
    # and the parent's own limits are untouched
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 0


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


# ---- environment, files, sockets ------------------------------------------------------------------------


def test_child_environment_holds_no_credentials(monkeypatch: pytest.MonkeyPatch):
    # Given a parent with AWS credentials in its environment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    # When the child looks at its environment
    env = run_isolated(lambda: dict(os.environ), QUICK)
    # Then there is nothing but its scratch locations
    assert not [key for key in env if key.startswith("AWS")]
    assert set(env) == {"HOME", "TMPDIR", "LANG"}
    # And the parent keeps its own
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLEKEY"


def test_child_cannot_write_files_and_works_in_a_scratch_dir_that_is_removed(tmp_path: Path):
    # Given a file the child tries to overwrite, and a new file it tries to write in its cwd
    target_file = tmp_path / "data.txt"
    target_file.write_text("original")

    def target() -> dict[str, Any]:
        outcome: dict[str, Any] = {"cwd": os.getcwd()}
        for name, path in (("own", "scratch.txt"), ("outside", str(target_file))):
            try:
                with open(path, "a") as handle:
                    handle.write("pwned")
                outcome[name] = "written"
            except OSError as exc:
                outcome[name] = exc.errno
        return outcome

    # When it runs
    outcome = run_isolated(target, QUICK)
    # Then every write failed with EFBIG (RLIMIT_FSIZE 0), nothing changed, and the scratch dir is gone
    import errno

    assert outcome["own"] == errno.EFBIG and outcome["outside"] == errno.EFBIG
    assert target_file.read_text() == "original"
    assert Path(outcome["cwd"]).name.startswith("strategy-")
    assert not Path(outcome["cwd"]).exists()
    assert os.getcwd() != outcome["cwd"]


def test_inherited_sockets_are_closed_in_the_child():
    left, right = socket.socketpair()
    try:
        fd = left.fileno()

        def target() -> bool:
            try:
                os.fstat(fd)
            except OSError:
                return True
            return False

        assert run_isolated(target, QUICK) is True
        # and the parent's socket still works
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
    finally:
        left.close()
        right.close()


# ---- a child that dies ----------------------------------------------------------------------------------


def test_parent_survives_a_child_that_calls_os_exit():
    with pytest.raises(StrategyError, match="exit code 3"):
        run_isolated(lambda: os._exit(3), QUICK)
    assert_parent_healthy()


def test_parent_survives_a_child_killed_by_sigkill():
    # SIGKILL that the parent did not send is what the kernel's OOM killer does
    with pytest.raises(StrategyMemoryError, match="killed by the system"):
        run_isolated(lambda: os.kill(os.getpid(), signal.SIGKILL), QUICK)
    assert_parent_healthy()


def test_parent_survives_a_crashing_child():
    with pytest.raises(StrategyError, match="SIGSEGV"):
        run_isolated(lambda: os.kill(os.getpid(), signal.SIGSEGV), QUICK)
    assert_parent_healthy()


def test_unpicklable_result_is_an_engine_error():
    with pytest.raises(EngineError, match="could not be sent"):
        run_isolated(lambda: lambda: 1, QUICK)
    assert_parent_healthy()


def test_result_types_outside_the_allow_list_are_refused_by_the_parent():
    with pytest.raises(EngineError, match=r"collections\.Counter, which may not cross the process boundary"):
        run_isolated(lambda: Counter("abc"), QUICK)
    assert_parent_healthy()


# ---- the boundary itself ---------------------------------------------------------------------------------


class _Evil:
    def __reduce__(self) -> Any:
        return (os.system, ("echo pwned",))


def _through_pipe(payload: Any, max_bytes: int = 1 << 30) -> Any:
    """Send `payload` from a thread (a pipe holds only so much) and receive it here."""
    read_fd, write_fd = os.pipe()

    def sender() -> None:
        try:
            boundary.send(write_fd, payload)
        except BrokenPipeError:  # the receiver stopped reading
            pass
        finally:
            os.close(write_fd)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        return boundary.receive(read_fd, max_bytes)
    finally:
        os.close(read_fd)
        thread.join()


def test_boundary_refuses_a_malicious_pickle():
    with pytest.raises(pickle.UnpicklingError, match=r"(os|posix)\.system"):
        _through_pipe(_Evil())


class _Reduces:
    def __init__(self, reduced: Any) -> None:
        self.reduced = reduced

    def __reduce__(self) -> Any:
        return self.reduced


@pytest.mark.parametrize(
    "reduced, fragment",
    [
        ((np.ndarray, ((1,), object, b"\x00" * 8)), "construct ndarray directly"),
        ((np.recarray, ((1,), [("a", "O")], b"\x00" * 8)), "construct recarray directly"),
        ((np.memmap, ("/etc/hostname",)), "numpy.memmap"),
        ((getattr, ("text", "upper")), "builtins.getattr"),
        ((Counter, ("abc",)), "collections.Counter"),
    ],
    ids=["ndarray_over_raw_bytes", "recarray_over_raw_bytes", "memmap_of_a_path", "getattr", "other_class"],
)
def test_boundary_refuses_pickles_that_call_unsafe_constructors(reduced: Any, fragment: str):
    with pytest.raises(pickle.UnpicklingError, match=fragment):
        _through_pipe(_Reduces(reduced))


def test_boundary_refuses_oversized_results_before_reading_them():
    with pytest.raises(pickle.UnpicklingError, match="larger than"):
        _through_pipe(np.zeros(200_000), max_bytes=1 << 20)


def test_boundary_round_trips_data_types():
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}, index=pd.date_range("2024-01-01", periods=2, tz="UTC"))
    payload = {"frame": frame, "ts": pd.Timestamp("2024-01-01", tz="UTC"), "arr": np.arange(5), "c": 1j, "s": {1, 2}}
    back = _through_pipe(payload)
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["ts"] == payload["ts"] and back["c"] == 1j and back["s"] == {1, 2}
    np.testing.assert_array_equal(back["arr"], np.arange(5))


def test_boundary_round_trips_engine_data_classes():
    from backtest_engine.models import DateRange

    payload = {
        "dataclass": SandboxLimits(cpu_seconds=2),
        "model": DateRange(start="2024-01-01", end="2024-02-01"),
        "error": InvalidSignals("bad", line=3),
        "object_array": np.array([1, "a", None], dtype=object),
    }
    back = _through_pipe(payload)
    assert back["dataclass"] == SandboxLimits(cpu_seconds=2)
    assert back["model"] == payload["model"]
    assert isinstance(back["error"], InvalidSignals) and back["error"].line == 3
    assert back["object_array"].tolist() == [1, "a", None]


def test_boundary_reports_a_truncated_stream_as_eof():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, io.BytesIO(b"\x00\x00").getvalue())
    os.close(write_fd)
    try:
        with pytest.raises(EOFError):
            boundary.receive(read_fd, 1 << 20)
    finally:
        os.close(read_fd)
