"""The trusted side of the sandbox: start the zygote, run one job in a fresh child, read what it decided.

`run_job` hands a child its job (the strategy source, the parameters and a copy of the bars) over a pipe and
reads its answer over another, frame by frame (`wire`), with every size capped before anything is
allocated and a wall-clock deadline; the child's exit status (reported by the zygote, its parent) turns a
death into a typed error. Nothing the child sends is trusted beyond its type and size: errors become the
trusted side's own classes with capped string messages, and decisions are validated and simulated by the
caller (`engine.run_backtest`), never taken as results.

One `Supervisor` per process (`default_supervisor`), safe to use from several threads. The zygote starts
on first use (the runner's cold start calls `default_supervisor().layers()` to start it early and report
which confinement layers hold); if it dies, the next job starts a new one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from backtest_engine.errors import (
    EngineError,
    StrategyError,
    StrategyMemoryError,
    StrategyTimeout,
)
from backtest_engine.sandbox import confinement, wire
from backtest_engine.sandbox.faults import cap_message
from backtest_engine.sandbox.limits import SandboxLimits
from backtest_engine.sandbox.zygote import (
    ALLOW_UNRESTRICTED_ARG,
    CONTROL,
    FLAG_PROBE,
    FLAG_SECCOMP,
    FLAG_UNRESTRICTED,
    OP_EXITED,
    OP_KILL,
    OP_READY,
    OP_SPAWN,
    OP_SPAWNED,
    child_environment,
)

ProgressFn = Callable[[int, int], None]

ZYGOTE_START_SECONDS = 120.0  # imports and warm-up (about 1–2 s here; far more on a loaded machine)
_EXIT_WAIT_SECONDS = 10.0


class SandboxUnavailable(EngineError):
    """The sandbox cannot run strategy code here (the zygote would not start, or a child could not apply
    the core confinement). An infrastructure fault: the job is retried, then dead-lettered."""

    code = "SandboxUnavailable"


@dataclass
class Answer:
    """What a child sent back, decoded and size-checked (not yet validated as decisions)."""

    layers: dict[str, Any] = field(default_factory=dict)
    signals: np.ndarray | None = None
    orders: np.ndarray | None = None
    logs: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    # Seconds from the start of `Supervisor.run`: the child forked (spawned), confined and about to run the
    # strategy (ready: the "fork to first bar" overhead), its answer complete (answered).
    timings: dict[str, float] = field(default_factory=dict)


class Supervisor:
    """Owns one zygote process and the control channel to it."""

    def __init__(self, *, allow_unrestricted: bool = False) -> None:
        self._allow_unrestricted = allow_unrestricted
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._starting: tuple[subprocess.Popen[bytes], socket.socket] | None = None
        self._next_request = 0
        self._spawns: dict[int, Future[int]] = {}
        self._exits: dict[int, Future[int]] = {}
        self._detached: set[int] = set()
        self._owners: dict[int, socket.socket] = {}  # each running child's zygote (its control channel)
        # Children of a zygote that ended: it killed them (or they died with it), no exit will be reported.
        self._orphaned: set[int] = set()
        self._layers: dict[str, Any] | None = None
        self.runner_non_dumpable = False
        atexit.register(self.close)

    # ---- the zygote --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote without waiting for it: its imports and warm-up then overlap the caller's own
        (the runner calls this first thing at cold start). Idempotent."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._control is not None or self._starting is not None:
            return
        self.runner_non_dumpable = confinement.harden_trusted_process()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args = [sys.executable, "-s", "-m", "backtest_engine.sandbox.zygote", str(theirs.fileno())]
        if self._allow_unrestricted:
            args.append(ALLOW_UNRESTRICTED_ARG)
        try:
            process = subprocess.Popen(
                args,
                env=child_environment(dict(os.environ), sys.path),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                cwd="/",
                close_fds=True,
                # Its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) must reach the
                # runner, which lets running jobs finish, and not the zygote, which would kill them. The
                # zygote still ends with the runner: parent-death signal, and its channel closing.
                process_group=0,
            )
        except OSError as exc:
            ours.close()
            raise SandboxUnavailable(f"the sandbox zygote could not start: {exc}") from None
        finally:
            theirs.close()
        self._starting = (process, ours)

    def _ensure_started(self) -> socket.socket:
        with self._lock:
            if self._control is not None:
                return self._control
            self._start_locked()
            assert self._starting is not None
            process, ours = self._starting
            self._starting = None
            ours.settimeout(ZYGOTE_START_SECONDS)
            try:
                message = ours.recv(CONTROL.size)
            except OSError:
                message = b""
            if len(message) != CONTROL.size or CONTROL.unpack(message)[0] != OP_READY:
                ours.close()
                process.kill()
                process.wait()
                raise SandboxUnavailable(f"the sandbox zygote did not start (exit code {process.poll()})")
            ours.settimeout(None)
            self._process, self._control = process, ours
            threading.Thread(target=self._read_control, args=(ours,), name="sandbox-zygote", daemon=True).start()
            return ours

    def _read_control(self, control: socket.socket) -> None:
        while True:
            try:
                message = control.recv(CONTROL.size)
            except OSError:
                message = b""
            if len(message) != CONTROL.size:
                break
            op, request, value, pid = CONTROL.unpack(message)
            with self._lock:
                if op == OP_SPAWNED:
                    self._exits.setdefault(pid, Future())
                    self._owners[pid] = control
                    spawned = self._spawns.pop(request, None)
                    if spawned is not None:
                        spawned.set_result(pid)
                elif op == OP_EXITED:
                    self._owners.pop(pid, None)
                    if pid in self._detached:
                        self._detached.discard(pid)
                        self._exits.pop(pid, None)
                    else:
                        self._exits.setdefault(pid, Future()).set_result(value)
        with self._lock:  # the zygote is gone: fail whoever waits, start a new one next time
            if self._control is control:
                self._control = None
            failure = SandboxUnavailable("the sandbox zygote ended unexpectedly")
            for future in self._spawns.values():
                if not future.done():
                    future.set_exception(failure)
            self._spawns.clear()
            # Its children died with it (or it killed them): their exits will never be reported.
            for pid in [pid for pid, owner in self._owners.items() if owner is control]:
                del self._owners[pid]
                if pid in self._detached:  # nobody waits for it
                    self._detached.discard(pid)
                    self._exits.pop(pid, None)
                    continue
                waiting = self._exits.get(pid)
                if waiting is not None and not waiting.done():
                    waiting.set_exception(failure)
                    self._orphaned.add(pid)
        with contextlib.suppress(OSError):
            control.close()
        if self._process is not None:
            with contextlib.suppress(Exception):
                self._process.wait(timeout=5)

    def _send(self, control: socket.socket, op: int, request: int, value: int, pid: int, fds: list[int]) -> None:
        with self._send_lock:
            socket.send_fds(control, [CONTROL.pack(op, request, value, pid)], fds)

    def close(self) -> None:
        """End the zygote (it kills any child still running)."""
        with self._lock:
            control, process = self._control, self._process
            self._control = None
            if self._starting is not None:
                process, control = self._starting
                self._starting = None
        if control is not None:
            with contextlib.suppress(OSError):
                control.shutdown(socket.SHUT_RDWR)
            control.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def zygote_pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._control is not None else None

    # ---- one child ---------------------------------------------------------------------------------

    def _spawn(self, flags: int, bars_fd: int) -> tuple[int, int, int]:
        """Fork a child that maps `bars_fd`; returns (pid, the job's write end, the answer's read end)."""
        control = self._ensure_started()
        job_read, job_write = os.pipe()
        answer_read, answer_write = os.pipe()
        future: Future[int] = Future()
        with self._lock:
            self._next_request += 1
            request = self._next_request
            self._spawns[request] = future
        try:
            self._send(control, OP_SPAWN, request, flags, 0, [job_read, answer_write, bars_fd])
            pid = future.result(timeout=ZYGOTE_START_SECONDS)
        except BaseException:
            for fd in (job_write, answer_read):
                os.close(fd)
            raise
        finally:
            os.close(job_read)
            os.close(answer_write)
            with self._lock:
                self._spawns.pop(request, None)
        return pid, job_write, answer_read

    def kill(self, pid: int) -> None:
        """SIGKILL the child `pid` and its process group (the zygote checks it is still its child)."""
        control = self._control
        if control is not None:
            with contextlib.suppress(OSError):
                self._send(control, OP_KILL, 0, 0, pid, [])

    def _detach(self, pid: int) -> None:
        """Nobody will wait for `pid`'s exit: forget it once the zygote reports it (or now, if it did)."""
        with self._lock:
            future = self._exits.get(pid)
            if future is not None and future.done():
                del self._exits[pid]
            elif pid in self._orphaned:
                self._orphaned.discard(pid)
            else:
                self._detached.add(pid)

    def _wait_exit(self, pid: int, timeout: float) -> int | None:
        """The child's wait status once the zygote reaped it, or None if it did not end in time; raises
        `SandboxUnavailable` at once when its zygote ended (nobody will ever report its exit)."""
        with self._lock:
            if pid in self._orphaned:
                raise SandboxUnavailable("the sandbox zygote ended unexpectedly")
            future = self._exits.setdefault(pid, Future())
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            return None
        finally:
            if future.done():
                with self._lock:
                    self._exits.pop(pid, None)

    def run(
        self,
        header: dict[str, Any],
        columns: dict[str, np.ndarray],
        limits: SandboxLimits,
        *,
        code: bytes = b"",
        flags: int = FLAG_SECCOMP,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Answer:
        """Run one job in a fresh child and return its decoded answer, or raise the typed error it ends with.

        `code` is the strategy's restricted code, ``marshal``-ed (the child compiles the source when empty)."""
        if flags & FLAG_UNRESTRICTED and not self._allow_unrestricted:
            raise ValueError("this supervisor does not run unrestricted code")
        n = int(header["bars"])
        started = time.perf_counter()
        bars_fd = wire.write_bars(columns)
        try:
            pid, job_write, answer_read = self._spawn(flags, bars_fd)
        finally:
            os.close(bars_fd)
        spawned = time.perf_counter() - started
        reaped = killed = finished = False
        try:
            try:
                wire.write_job(job_write, {**header, "limits": _limits_header(limits)}, code)
            except BrokenPipeError:
                pass  # the child died before reading its job: its exit status says why
            finally:
                os.close(job_write)
            deadline = time.monotonic() + limits.wall_seconds
            reader = wire.FrameReader(answer_read, _caps(n, limits))
            try:
                answer = _read_answer(reader, deadline, n, limits, progress, should_stop, started)
                answer.timings.update(spawned=spawned, answered=time.perf_counter() - started)
                finished = True
                return answer
            except wire.Deadline:
                killed = True
                raise StrategyTimeout(
                    f"the strategy ran longer than its wall-clock limit of {limits.wall_seconds:g} s and was stopped"
                ) from None
            except Cancelled:
                killed = True
                raise
            except wire.ProtocolError as exc:
                killed = True
                raise StrategyError(f"the strategy process broke the result protocol: {exc}") from None
            except EOFError:
                status = self._wait_exit(pid, _EXIT_WAIT_SECONDS)
                reaped = status is not None
                raise _death_error(status, limits) from None
            except EngineError:  # the child's own error report: it has nothing more to say
                finished = True
                raise
        finally:
            os.close(answer_read)
            if finished or killed:
                # Its answer is complete (or it is being stopped): end it now rather than wait for its exit,
                # which would add a process teardown to every job. The zygote reaps it.
                self.kill(pid)
                self._detach(pid)
            elif not reaped:
                with contextlib.suppress(SandboxUnavailable):  # its zygote is gone, and the child with it
                    if self._wait_exit(pid, _EXIT_WAIT_SECONDS) is None:
                        self.kill(pid)
                        self._wait_exit(pid, _EXIT_WAIT_SECONDS)
            with self._lock:
                self._orphaned.discard(pid)

    def layers(self) -> dict[str, Any]:
        """Which confinement layers hold here, and what a probe child's attempts to reach out got (cached)."""
        if self._layers is None:
            header, empty = barless_job()
            limits = SandboxLimits(cpu_seconds=10, wall_seconds=60)
            answer = self.run(header, empty, limits, flags=FLAG_SECCOMP | FLAG_PROBE)
            self._layers = {**answer.layers, **(answer.report or {}), "runner_non_dumpable": self.runner_non_dumpable}
        return self._layers


class Cancelled(EngineError):
    """The caller asked to stop the run (`should_stop`): the child was killed, there is no answer."""

    code = "Cancelled"


def _limits_header(limits: SandboxLimits) -> dict[str, Any]:
    return {
        "cpu_seconds": limits.cpu_seconds,
        "memory_mb": limits.memory_mb,
        "max_log_lines": limits.max_log_lines,
        "max_log_bytes": limits.max_log_bytes,
        "recursion_limit": limits.recursion_limit,
    }


def barless_job(source: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and (empty) columns of a job without bars: the probe's, or a test's unrestricted code."""
    header = {
        "bars": 0,
        "source": source,
        "params": {},
        "symbol": "PROBE",
        "timeframe": "1d",
        "lot_size": 1.0,
        "periods_per_year": 252,
        "initial_capital": 1.0,
        "commission": 0.0,
        "slippage": 0.0,
        "check_lookahead": False,
    }
    return header, {name: np.zeros(0) for name in wire.BAR_COLUMNS}


def _caps(n: int, limits: SandboxLimits) -> dict[int, int]:
    return {
        wire.LAYERS: wire.MAX_LAYERS_BYTES,
        wire.PROGRESS: wire.PROGRESS_BODY.size,
        wire.SIGNALS: 8 * n,
        wire.ORDERS: wire.ORDER_DTYPE.itemsize * wire.max_orders(n),
        wire.LOGS: 4 + 4 * limits.max_log_lines + limits.max_log_bytes,
        wire.ERROR: wire.ERROR_HEAD.size + wire.MAX_ERROR_MESSAGE_BYTES,
        wire.REPORT: wire.MAX_REPORT_BYTES,
        wire.DONE: 0,
    }


def _read_answer(
    reader: wire.FrameReader,
    deadline: float,
    n: int,
    limits: SandboxLimits,
    progress: ProgressFn | None,
    should_stop: Callable[[], bool] | None,
    started: float,
) -> Answer:
    answer = Answer()
    first = True
    seen: set[int] = set()
    while True:
        try:
            frame = reader.read(deadline, should_stop)
        except wire.StopRequested:
            raise Cancelled("the run was stopped on request") from None
        kind = frame.kind
        if first != (kind == wire.LAYERS):
            raise wire.ProtocolError("the first frame must be LAYERS, and only the first")
        if kind != wire.PROGRESS:
            if kind in seen:
                raise wire.ProtocolError(f"frame kind {kind} sent twice")
            seen.add(kind)
        first = False
        if kind == wire.LAYERS:
            answer.timings["ready"] = time.perf_counter() - started
            answer.layers = json.loads(bytes(frame.payload))
        elif kind == wire.PROGRESS:
            done, total = wire.PROGRESS_BODY.unpack(frame.payload)
            if progress is not None and total == n and done <= n:
                progress(done, total)
        elif kind == wire.SIGNALS:
            if len(frame.payload) != 8 * n or wire.ORDERS in seen:
                raise wire.ProtocolError("SIGNALS must hold one float64 per bar")
            answer.signals = np.frombuffer(frame.payload, dtype="<f8")
        elif kind == wire.ORDERS:
            if len(frame.payload) % wire.ORDER_DTYPE.itemsize or wire.SIGNALS in seen:
                raise wire.ProtocolError("ORDERS must hold whole order records")
            answer.orders = np.frombuffer(frame.payload, dtype=wire.ORDER_DTYPE)
        elif kind == wire.LOGS:
            answer.logs = wire.decode_logs(frame.payload, limits.max_log_lines)
        elif kind == wire.REPORT:
            answer.report = json.loads(bytes(frame.payload))
        elif kind == wire.ERROR:
            raise _child_error(*wire.decode_error(frame.payload), layers=answer.layers)
        elif kind == wire.DONE:
            return answer


def _child_error(kind: int, line: int | None, message: str, *, layers: dict[str, Any]) -> EngineError:
    """The trusted side's own error for what the child reported: a class chosen here, a capped string."""
    message = cap_message(message)
    if kind == wire.SANDBOX_UNAVAILABLE and not layers.get("core", False):
        return SandboxUnavailable(f"the sandbox could not confine the strategy process: {message}")
    if 1 <= kind < len(wire.ERROR_KINDS):
        return wire.ERROR_KINDS[kind](message, line=line)
    return StrategyError(f"the strategy could not be run: {message}", line=line)


def _death_error(status: int | None, limits: SandboxLimits) -> EngineError:
    if status is None:
        return StrategyError("the strategy process stopped answering and was stopped")
    code = os.waitstatus_to_exitcode(status)
    if code == -signal.SIGXCPU:
        cpu = max(1, int(np.ceil(limits.cpu_seconds)))
        return StrategyTimeout(f"the strategy used more than its CPU-time limit of {cpu} s and was stopped")
    if code == -signal.SIGKILL:
        return StrategyMemoryError(
            "the strategy process was killed by the system, most likely for using too much memory "
            f"(limit {limits.memory_mb} MB)"
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return StrategyError(f"the strategy process crashed ({name}, exit code {code})")
    return StrategyError(f"the strategy process ended unexpectedly with exit code {code}")


@cache
def default_supervisor() -> Supervisor:
    return Supervisor()
