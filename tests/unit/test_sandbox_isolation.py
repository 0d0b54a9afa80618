"""The sandbox's operating-system boundary: a child that got past the language layer still reaches nothing.

Two kinds of tests:

- **Escaped child**: plain Python with the real builtins (the test-only unrestricted entry of the zygote,
  which a production supervisor refuses) runs inside the confined child, once with seccomp and once with
  the core layers alone (rlimits, identity, descriptors), and reports what each attempt got. It must open
  no file, socket, pipe or process, read no ``/proc/*/environ`` or ``/proc/*/mem``, hold no canary
  credential anywhere in its memory, and leave nothing behind. CI runs as root: the child drops to
  ``nobody`` by itself, and a victim process of ``nobody`` stands for a same-user runner.
- **Faults through the engine**: how each way a strategy can end (CPU, wall clock, memory, recursion,
  exceptions, a flood of output, a huge or odd error message) becomes a typed error, and the trusted side
  survives every one of them.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.errors import (
    InvalidSignals,
    StrategyError,
    StrategyMemoryError,
    StrategyTimeout,
)
from backtest_engine.models import BacktestRequest
from backtest_engine.sandbox import SandboxLimits
from backtest_engine.sandbox.supervisor import Supervisor, barless_job
from backtest_engine.sandbox.zygote import FLAG_SECCOMP, FLAG_UNRESTRICTED

pytestmark = pytest.mark.xdist_group("sandbox-isolation")

QUICK = SandboxLimits(cpu_seconds=5, wall_seconds=30, memory_mb=512)
CANARY = "canary-" + secrets.token_hex(16)
CANARY_DIGEST = hashlib.sha256(CANARY.encode()).hexdigest()


def random_walk_bars(n: int = 400, seed: int = 3) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    times = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    return Bars(
        "TEST", "1h", times.astype("datetime64[ns]"), open_, close * 1.002, close * 0.998, close, np.ones(n), 1.0, 365
    )


def backtest(code: str, limits: SandboxLimits = QUICK, bars: Bars | None = None):
    request = BacktestRequest.model_validate(
        {"strategy_code": textwrap.dedent(code), "symbol": "TEST"}, context={"custom_data": True}
    )
    return run_backtest(request, bars=bars or random_walk_bars(), limits=limits)


# ---- the escaped child ------------------------------------------------------------------------------

ESCAPE = """
import ctypes, gc, hashlib, os, socket, sys
result = {}
libc = ctypes.CDLL(None, use_errno=True)

def attempt(name, action):
    try:
        value = action()
        result[name] = "ALLOWED: " + repr(value)[:120]
    except BaseException as exc:
        result[name] = "refused: " + type(exc).__name__ + ": " + str(exc)[:120]

def syscall_ok(name, number, *args):
    ret = libc.syscall(number, *args)
    result[name] = "ALLOWED" if ret >= 0 else "refused: errno %d" % ctypes.get_errno()

attempt("open_file", lambda: open("/etc/hostname").read())
attempt("open_self_environ", lambda: open("/proc/self/environ", "rb").read())
attempt("open_parent_environ", lambda: open("/proc/%d/environ" % os.getppid(), "rb").read())
attempt("open_runner_environ", lambda: open("/proc/%d/environ" % RUNNER, "rb").read())
attempt("open_runner_mem", lambda: open("/proc/%d/mem" % RUNNER, "rb"))
attempt("open_victim_mem", lambda: open("/proc/%d/mem" % VICTIM, "rb"))
attempt("listdir", lambda: os.listdir("/"))
attempt("write_tmp", lambda: open("/tmp/escaped-" + str(os.getpid()), "w").write("x"))
attempt("mkdir_tmp", lambda: os.mkdir("/tmp/escaped-dir-" + str(os.getpid())))
attempt("truncate_runner_file", lambda: os.truncate(RUNNER_FILE, 0))
attempt("unlink_runner_file", lambda: os.unlink(RUNNER_FILE))
attempt("rename_runner_file", lambda: os.rename(RUNNER_FILE, RUNNER_FILE + ".moved"))
attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("unix_socketpair", lambda: socket.socketpair())
attempt("pipe", os.pipe)
attempt("dup", lambda: os.dup(4))
attempt("fork", lambda: os._exit(0) if os.fork() == 0 else "forked")
attempt("thread", lambda: __import__("threading").Thread(target=lambda: None).start())
attempt("import_new_module", lambda: __import__("xml.dom.minidom"))
attempt("signal_zygote", lambda: os.kill(os.getppid(), 0))
attempt("signal_runner", lambda: os.kill(RUNNER, 0))
attempt("signal_victim", lambda: os.kill(VICTIM, 0))
# process_vm_readv(pid, local iov, 1, remote iov, 1, 0) of the victim's canary
buf = ctypes.create_string_buffer(64)
local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)
remote = (ctypes.c_void_p * 2)(VICTIM_ADDRESS, 64)
syscall_ok("process_vm_readv_victim", 310, VICTIM, local, 1, remote, 1, 0)
syscall_ok("ptrace_attach_victim", 101, 16, VICTIM, 0, 0)
syscall_ok("mmap_exec", 9, 0, 4096, 7, 0x22, -1, 0)
syscall_ok("execve", 59, b"/bin/true", None, None)

def holds_canary(obj):
    text = obj.decode("latin-1") if isinstance(obj, (bytes, bytearray)) else obj
    start = text.find("canary-")
    while start >= 0:
        if hashlib.sha256(text[start:start + 39].encode()).hexdigest() == DIGEST:
            return True
        start = text.find("canary-", start + 1)
    return False

result["canary_in_environ"] = any(holds_canary(k + "=" + v) for k, v in os.environ.items())
result["aws_variables"] = sorted(k for k in os.environ if k.startswith("AWS"))
result["canary_in_memory"] = any(
    holds_canary(o) for o in gc.get_objects() if isinstance(o, (str, bytes, bytearray))
) or any(holds_canary(v) for m in list(sys.modules.values()) for v in vars(m).values() if isinstance(v, str))
result["uid"] = os.getuid()
import fcntl
def _open(fd):
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
        return True
    except OSError:
        return False
result["open_fds"] = [fd for fd in range(1024) if _open(fd)]
"""

MUST_BE_REFUSED = [
    "open_file",
    "open_self_environ",
    "open_parent_environ",
    "open_runner_environ",
    "open_runner_mem",
    "open_victim_mem",
    "listdir",
    "write_tmp",
    "truncate_runner_file",
    "unlink_runner_file",
    "rename_runner_file",
    "socket",
    "unix_socketpair",
    "pipe",
    "dup",
    "fork",
    "thread",
    "import_new_module",
    "signal_zygote",
    "signal_runner",
    "execve",
]
# Refused only by seccomp: a same-user process (the victim, standing for a runner where prctl is refused)
# can be signalled, read with process_vm_readv and traced without it; executable memory can be mapped; and
# calls that take a path but make no descriptor (mkdir, and unlink/rename/truncate of the user's own files)
# work in world-writable directories. The runner keeps no file of its own there.
SECCOMP_ONLY = ["signal_victim", "process_vm_readv_victim", "ptrace_attach_victim", "mmap_exec", "mkdir_tmp"]


@pytest.fixture(scope="module")
def escape_supervisor() -> Iterator[Supervisor]:
    saved = os.environ.get("AWS_SECRET_ACCESS_KEY")
    os.environ["AWS_SECRET_ACCESS_KEY"] = CANARY  # in the runner's environment when the zygote starts
    supervisor = Supervisor(allow_unrestricted=True)
    try:
        supervisor.layers()  # starts the zygote with the canary in our environment
        yield supervisor
    finally:
        supervisor.close()
        if saved is None:
            os.environ.pop("AWS_SECRET_ACCESS_KEY", None)
        else:
            os.environ["AWS_SECRET_ACCESS_KEY"] = saved


@pytest.fixture(scope="module")
def victim() -> Iterator[tuple[int, int]]:
    """A process of ``nobody`` holding the canary in memory, dumpable: what a same-user runner is where
    ``prctl`` cannot make it non-dumpable (Lambda). Yields (pid, address of the canary's bytes)."""
    secret = ctypes.create_string_buffer(CANARY.encode())
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE 1 (a uid change cleared it)
            os.write(write_fd, b"ready")
            time.sleep(600)
        finally:
            os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 5) == b"ready"
    os.close(read_fd)
    try:
        yield pid, ctypes.addressof(secret)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def run_escape(supervisor: Supervisor, victim: tuple[int, int], seccomp: bool, runner_file: Path) -> dict[str, Any]:
    pid, address = victim
    source = (
        f"RUNNER = {os.getpid()}\nVICTIM = {pid}\nVICTIM_ADDRESS = {address}\nDIGEST = {CANARY_DIGEST!r}\n"
        f"RUNNER_FILE = {str(runner_file)!r}\n" + ESCAPE
    )
    header, empty = barless_job(source)
    flags = FLAG_UNRESTRICTED | (FLAG_SECCOMP if seccomp else 0)
    answer = supervisor.run(header, empty, QUICK, flags=flags)
    assert answer.report is not None and "crashed" not in answer.report, answer.report
    assert answer.layers["core"] is True
    assert answer.layers["seccomp"] is seccomp
    return {**answer.report, "layers": answer.layers}


@pytest.mark.parametrize("seccomp", [True, False], ids=["seccomp", "core_alone"])
def test_an_escaped_child_reaches_no_file_socket_process_or_secret(escape_supervisor, victim, seccomp, tmp_path):
    runner_file = tmp_path / "runner-owned.txt"
    runner_file.write_text("the runner's own data")
    tmp_path.chmod(0o777)  # even where the child could write the directory
    before = _escaped_entries()
    report = run_escape(escape_supervisor, victim, seccomp, runner_file)
    made = _escaped_entries() - before  # what the payload tried to create
    for name in sorted(made):
        if name.startswith("escaped-dir-") and not seccomp:  # the documented residual without seccomp
            os.rmdir(f"/tmp/{name}")
            made.discard(name)
    refused = MUST_BE_REFUSED + (SECCOMP_ONLY if seccomp else [])
    allowed = {name: report[name] for name in refused if not str(report[name]).startswith("refused")}
    assert not allowed, f"the escaped child got: {allowed}"
    assert report["canary_in_environ"] is False
    assert report["aws_variables"] == []
    assert report["canary_in_memory"] is False
    assert report["uid"] == 65534  # CI runs as root: the child dropped to nobody
    assert report["open_fds"] == [0, 1, 2, 4]  # /dev/null ×3 and its answer pipe: no socket, no file inherited
    assert report["layers"]["rlimits"]["NOFILE"] == 0 and report["layers"]["rlimits"]["NPROC"] == 0
    # it left nothing behind: no file, no process (the zygote has no child left)
    assert made == set()
    assert runner_file.read_text() == "the runner's own data"
    zygote = escape_supervisor.zygote_pid
    assert zygote is not None and _no_children_soon(zygote)


def test_the_zygote_holds_no_credential_in_its_environment(escape_supervisor):
    zygote = escape_supervisor.zygote_pid
    assert zygote is not None
    environ = Path(f"/proc/{zygote}/environ").read_bytes()
    assert CANARY.encode() not in environ
    assert b"AWS_" not in environ
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == CANARY  # while the runner does hold it


def test_the_runner_makes_itself_non_dumpable(escape_supervisor):
    """Where prctl works the runner (which holds the credentials) is non-dumpable: no process of its own
    user can ptrace it, read its /proc/<pid>/mem or environ, or process_vm_readv it."""
    assert escape_supervisor.runner_non_dumpable is True
    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE


@pytest.mark.xfail(strict=True, reason="residual risk without seccomp: a dumpable same-user process is readable")
def test_without_seccomp_a_dumpable_same_user_process_cannot_be_read(escape_supervisor, victim, tmp_path):
    before = _escaped_entries()
    report = run_escape(escape_supervisor, victim, False, tmp_path / "unused")
    for name in _escaped_entries() - before:
        os.rmdir(f"/tmp/{name}")
    assert report["process_vm_readv_victim"].startswith("refused")


def test_a_production_supervisor_refuses_unrestricted_code():
    supervisor = Supervisor()
    try:
        with pytest.raises(ValueError, match="does not run unrestricted code"):
            supervisor.run({"bars": 0}, {}, QUICK, flags=FLAG_UNRESTRICTED)
    finally:
        supervisor.close()


def test_layers_are_reported_at_start(escape_supervisor):
    layers = escape_supervisor.layers()
    assert layers["core"] is True and layers["seccomp"] is True and layers["no_new_privs"] is True
    assert all(outcome.startswith("refused") for outcome in layers["attempts"].values()), layers["attempts"]


def _escaped_entries() -> set[str]:
    return {name for name in os.listdir("/tmp") if name.startswith("escaped-")}


def _no_children_soon(pid: int, seconds: float = 10.0) -> bool:
    """The supervisor ends a child once its answer is in, without waiting: it is gone a moment later."""
    deadline = time.monotonic() + seconds
    while _children_of(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


# ---- faults through the engine ------------------------------------------------------------------------


def test_infinite_loop_hits_the_cpu_limit():
    started = time.monotonic()
    with pytest.raises(StrategyTimeout, match="CPU-time limit of 1 s"):
        backtest(
            """
            def generate_signals(data, params):
                n = 0
                while True:
                    n += 1
            """,
            SandboxLimits(cpu_seconds=1, wall_seconds=30),
        )
    assert time.monotonic() - started < 25  # ended by the CPU limit, well before the wall-clock limit


def test_a_long_run_hits_the_wall_clock_limit():
    with pytest.raises(StrategyTimeout, match="wall-clock limit of 1 s"):
        backtest(
            """
            def generate_signals(data, params):
                while True:
                    pass
            """,
            SandboxLimits(cpu_seconds=30, wall_seconds=1),
        )


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
    code = "def generate_signals(data, params):\n" + textwrap.indent(body, "    ")
    with pytest.raises(StrategyMemoryError):
        backtest(code, SandboxLimits(cpu_seconds=20, wall_seconds=60, memory_mb=200))


def test_deep_recursion_is_a_strategy_error_naming_recursion():
    with pytest.raises(StrategyError) as caught:
        backtest("def deep(n):\n    return deep(n + 1)\n\ndef generate_signals(data, params):\n    return deep(0)\n")
    assert caught.value.line == 2
    assert "RecursionError" in caught.value.message


def test_user_exception_names_its_line():
    with pytest.raises(StrategyError) as caught:
        backtest("def generate_signals(data, params):\n    x = 1\n    return 1 / 0\n")
    assert caught.value.line == 3
    assert "ZeroDivisionError" in caught.value.message


def test_an_overflow_is_the_strategys_fault():
    with pytest.raises(InvalidSignals):
        backtest("def generate_signals(data, params):\n    return [10 ** 400] * len(data)\n")


def test_a_huge_error_message_is_capped():
    with pytest.raises(StrategyError) as caught:
        backtest("def generate_signals(data, params):\n    raise ValueError('x' * 10_000_000)\n")
    assert len(caught.value.message) < 1200
    assert isinstance(caught.value.message, str)


def test_printing_past_the_limit_is_an_output_limit():
    from backtest_engine.errors import StrategyOutputLimit

    with pytest.raises(StrategyOutputLimit):
        backtest("def generate_signals(data, params):\n    while True:\n        print('spam')\n")


def test_logs_come_back_and_the_look_ahead_rerun_adds_none():
    result = backtest(
        """
        def generate_signals(data, params):
            print("bars", len(data))
            return np.zeros(len(data))
        """
    )
    assert result.logs == ["bars 400"]


def test_the_trusted_side_survives_every_fault_and_keeps_working():
    for code in (
        "import math\ndef generate_signals(data, params):\n    return [math.nan] * 3\n",
        "def generate_signals(data, params):\n    raise SystemExit(3)\n",
        "def generate_signals(data, params):\n    raise KeyboardInterrupt()\n",
    ):
        with pytest.raises((StrategyError, InvalidSignals)):
            backtest(code)
    healthy = backtest("def generate_signals(data, params):\n    return np.ones(len(data))\n")
    assert healthy.trade_summary.total_trades == 1


def test_strategies_get_their_own_copy_of_the_bars():
    bars = random_walk_bars()
    close = bars.close.copy()
    result = backtest(
        """
        def generate_signals(data, params):
            data.loc[:, "close"] = 1e9
            data["open"] = 1.0
            return np.ones(len(data))
        """,
        bars=bars,
    )
    assert np.array_equal(bars.close, close)  # the trusted side's bars are untouched
    assert result.performance_metrics["final_capital"] < 1e6
    json.dumps(result.performance_metrics)
