"""`run_isolated`: run a callable in a forked child process with CPU, memory, file and environment limits.

Lambda has no ``/dev/shm``, so no ``multiprocessing.Pool``/``Queue``/locks: one ``fork``-context
``Process`` and one pipe carry the result (see `boundary`). The child inherits the parent's memory (market
data, imported numpy/pandas) without a copy, then confines itself before running the target:

- ``RLIMIT_CPU`` (SIGXCPU ends it → `StrategyTimeout`), ``RLIMIT_AS`` = its VmSize at fork + ``memory_mb``
  (→ MemoryError → `StrategyMemoryError`), ``RLIMIT_FSIZE`` 0 (no file grows; SIGXFSZ is ignored so a
  write fails with an OSError instead of killing the child), ``RLIMIT_CORE`` 0, the recursion limit;
- an emptied environment (no ``AWS_*`` or any other credential), a fresh scratch directory as cwd and
  ``HOME``/``TMPDIR`` (removed afterwards), and every inherited network socket closed.

The parent enforces the wall-clock limit (it kills the child), reaps the child on every path (no zombie)
and turns how the child ended into a typed error. A failing child never raises anything but an
`EngineError` in the parent.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import resource
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from backtest_engine.errors import EngineError, StrategyError, StrategyMemoryError, StrategyTimeout
from backtest_engine.sandbox import boundary
from backtest_engine.sandbox.faults import translate_exception
from backtest_engine.sandbox.limits import SandboxLimits

T = TypeVar("T")

RESULT_SLACK_BYTES = 256 << 20  # a result may exceed the child's memory budget by this much (inherited data)
_AS_HEADROOM_BYTES = 64 << 20  # raised into after the target returns, to report a MemoryError
_CPU_HARD_EXTRA_SECONDS = 2  # SIGKILL this long after SIGXCPU, should SIGXCPU not end the child
_JOIN_AFTER_RESULT_SECONDS = 10.0
_EXIT_CANNOT_REPORT = 70

# Pipe creation, fork and closing the parent's write end happen under one lock, so a concurrent
# run_isolated in another thread cannot fork a child that inherits this job's write end (which would
# hide this child's end-of-file from the parent).
_FORK_LOCK = threading.Lock()


def run_isolated(target: Callable[[], T], limits: SandboxLimits) -> T:
    """Run ``target()`` in a confined child process and return its (picklable) result.

    Raises the `EngineError` the child raised (other exceptions are translated in the child, see
    `translate_exception`), `StrategyTimeout` when the CPU or wall-clock limit ends the child,
    `StrategyMemoryError` when it runs out of memory, `StrategyError` naming the exit code or signal when
    it dies otherwise, and `EngineError` when its result cannot cross the process boundary.
    """
    context = multiprocessing.get_context("fork")
    scratch = tempfile.mkdtemp(prefix="strategy-")
    timed_out = threading.Event()
    timer: threading.Timer | None = None
    proc: Any = None
    read_fd = -1
    try:
        with _FORK_LOCK:
            read_fd, write_fd = os.pipe()
            try:
                proc = context.Process(
                    target=_child_main,
                    args=(target, limits, write_fd, read_fd, scratch),
                    name="strategy-sandbox",
                    daemon=True,
                )
                _flush_std_streams()
                proc.start()
            finally:
                os.close(write_fd)
        timer = threading.Timer(limits.wall_seconds, _kill_on_deadline, (proc, timed_out))
        timer.daemon = True
        timer.start()
        try:
            message = boundary.receive(read_fd, limits.memory_mb * (1 << 20) + RESULT_SLACK_BYTES)
        except EOFError:
            message = None
        except Exception as exc:  # refused or malformed: the parent never trusts the child's bytes
            raise EngineError(f"the sandbox result could not be received: {type(exc).__name__}: {exc}") from None
        if message is not None:
            timer.cancel()
            _reap(proc, _JOIN_AFTER_RESULT_SECONDS)
            return _unwrap(message)
        _reap(proc)  # still under the wall-clock timer
        timer.cancel()
        raise _death_error(proc.exitcode, limits, timed_out.is_set())
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        if proc is not None:
            with _FORK_LOCK:
                if proc.is_alive():
                    proc.kill()
            _reap(proc)
            proc.close()
        if read_fd >= 0:
            os.close(read_fd)
        shutil.rmtree(scratch, ignore_errors=True)


def _reap(proc: Any, timeout: float | None = None) -> None:
    """Wait for the child to end, then collect its exit status under `_FORK_LOCK`.

    Another thread's `Process.start()` collects ended children too (multiprocessing's `_cleanup`); two
    waitpid calls on one pid make `join` return without an exit status and `close` raise "Cannot close a
    process while it is still running" (seen with the local stack's two workers).
    """
    if not multiprocessing.connection.wait([proc.sentinel], timeout):
        return  # still running (the caller kills it)
    with _FORK_LOCK:
        proc.join()  # it has closed its end: its exit status follows at once


def _unwrap(message: Any) -> Any:
    if not (isinstance(message, tuple) and len(message) == 2 and message[0] in ("ok", "err")):
        raise EngineError("the sandbox sent a malformed result")
    status, payload = message
    if status == "ok":
        return payload
    if isinstance(payload, EngineError):
        raise payload
    raise EngineError("the sandbox sent a malformed error")


def _death_error(exitcode: int | None, limits: SandboxLimits, timed_out: bool) -> EngineError:
    if timed_out:
        return StrategyTimeout(
            f"the strategy ran longer than its wall-clock limit of {limits.wall_seconds:g} s and was stopped"
        )
    if exitcode == -signal.SIGXCPU:
        return StrategyTimeout(
            f"the strategy used more than its CPU-time limit of {_cpu_seconds(limits)} s and was stopped"
        )
    if exitcode == -signal.SIGKILL:
        return StrategyMemoryError(
            "the strategy process was killed by the system, most likely for using too much memory "
            f"(limit {limits.memory_mb} MB)"
        )
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return StrategyError(f"the strategy process crashed ({name}, exit code {exitcode})")
    return StrategyError(f"the strategy process ended unexpectedly with exit code {exitcode}")


def _kill_on_deadline(proc: Any, timed_out: threading.Event) -> None:
    timed_out.set()
    with contextlib.suppress(ValueError, OSError):  # already reaped
        proc.kill()


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _cpu_seconds(limits: SandboxLimits) -> int:
    return max(1, math.ceil(limits.cpu_seconds))


# ---- the child --------------------------------------------------------------------------------------


def _child_main(target: Callable[[], Any], limits: SandboxLimits, write_fd: int, read_fd: int, scratch: str) -> None:
    code = 0
    try:
        os.close(read_fd)
        _confine(limits, scratch, write_fd)
        try:
            message: tuple[str, Any] = ("ok", target())
        except BaseException as exc:
            _allow_reporting()
            message = ("err", _portable_error(exc))
        _allow_reporting()
        try:
            boundary.send(write_fd, message)
        except BrokenPipeError:
            code = _EXIT_CANNOT_REPORT
        except BaseException as exc:  # an unpicklable result, or out of memory while pickling it
            boundary.send(write_fd, ("err", _send_failure(exc)))
    except BaseException:
        code = _EXIT_CANNOT_REPORT
    finally:
        os._exit(code)


def _portable_error(exc: BaseException) -> EngineError:
    try:
        error = translate_exception(exc)
        pickle.dumps(error, protocol=5)
    except MemoryError:
        return StrategyMemoryError("the strategy ran out of memory")
    except Exception:
        error = EngineError(f"{type(exc).__name__} in the sandbox: {exc!r:.500}")
    return error


def _send_failure(exc: BaseException) -> EngineError:
    if isinstance(exc, MemoryError):
        return StrategyMemoryError("the strategy's result did not fit in its memory limit")
    return EngineError(f"the sandbox result could not be sent: {type(exc).__name__}: {exc}")


def _confine(limits: SandboxLimits, scratch: str, keep_fd: int) -> None:
    faulthandler.disable()  # a crash is reported by the parent; no dump of the inherited stack
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8"})
    tempfile.tempdir = scratch
    _close_sockets(keep_fd)
    cpu = _cpu_seconds(limits)
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + _CPU_HARD_EXTRA_SECONDS)
    vm_size = _vm_size_bytes()
    if vm_size is not None:
        budget = vm_size + limits.memory_mb * (1 << 20)
        _set_limit(resource.RLIMIT_AS, budget, budget + _AS_HEADROOM_BYTES)
    _set_limit(resource.RLIMIT_FSIZE, 0, 0)
    _set_limit(resource.RLIMIT_CORE, 0, 0)
    sys.setrecursionlimit(limits.recursion_limit)


def _allow_reporting() -> None:
    """After the target: lift the address-space limit to its headroom so a result or a MemoryError can
    still be pickled and sent."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _set_limit(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _vm_size_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _close_sockets(keep_fd: int) -> None:
    """Close inherited sockets (AWS keep-alive connections, servers): strategy code has no use for them."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        return
    for fd in fds:
        if fd == keep_fd or fd < 3:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            pass
