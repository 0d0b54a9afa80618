"""The trusted side of a batch job: many parameter sets of one strategy in one warm sandbox child.

A parameter optimization runs the same strategy on the same bars with many parameter sets. Forking,
confining and handing over the bars costs more than running a simple strategy, so `run_batch` does it
once per batch: the child gets the bars (one sealed memfd), the compiled code and the list of parameter
sets, runs the strategy once per set in a fresh module namespace (`child._serve_batch`) and streams each
combination's decisions back after a `COMBINATION` frame (`wire`). Nothing else changes at the boundary:
every frame is size-checked against the same per-combination caps as a single job before anything is
allocated, the combination indices must come in order, and the decisions are validated and simulated by
the caller (`backtest_engine.optimization.evaluate`), never taken as results.

`run_batch` is a generator: it yields each combination's `BatchItem` as soon as its frames are in, so the
caller simulates fills and metrics for combination k while the child computes k+1 (the child blocks on the
pipe once it is a combination ahead).

Faults stay per combination. A typed error the child reports ends that combination only. A child that
dies (CPU or memory limit, crash), stops answering (the wall-clock limit, per combination) or breaks the
protocol fails the combination it was on with the same typed error a single run gets; a new child then
runs the remaining parameter sets. `SandboxUnavailable` (the core confinement cannot be applied, the
zygote is gone) and a child that dies before it confined itself are infrastructure faults: raised.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest_engine.errors import EngineError, StrategyError, StrategyTimeout
from backtest_engine.sandbox import wire
from backtest_engine.sandbox.limits import SandboxLimits
from backtest_engine.sandbox.supervisor import (
    Answer,
    SandboxUnavailable,
    Supervisor,
    _caps,
    _child_error,
    _death_error,
    _limits_header,
)
from backtest_engine.sandbox.zygote import FLAG_SECCOMP

_EXIT_WAIT_SECONDS = 10.0


@dataclass
class BatchItem:
    """One combination's outcome: its decisions (`answer`, not yet validated) or its typed error."""

    index: int
    answer: Answer | None = None
    error: EngineError | None = None


class _ChildGone(Exception):
    """The child ended or was ended while on combination `index`, with `error` for it."""

    def __init__(self, index: int, error: EngineError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def run_batch(
    supervisor: Supervisor,
    header: dict[str, Any],
    columns: dict[str, np.ndarray],
    param_sets: Sequence[dict[str, Any]],
    limits: SandboxLimits,
    *,
    code: bytes,
    flags: int = FLAG_SECCOMP,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[BatchItem]:
    """Yield one `BatchItem` per parameter set, in order (see the module docstring).

    `header` is a single job's header (`engine.run_backtest` builds one) without ``params``; `limits` are
    one combination's. Stops early (the generator ends) when `should_stop()` turns true: it is asked
    between combinations and every half second while one runs.
    """
    m = len(param_sets)
    if m > wire.MAX_BATCH:
        raise ValueError(f"a batch holds at most {wire.MAX_BATCH} parameter sets; got {m}")
    n = int(header["bars"])
    bars_fd = wire.write_bars(columns)
    try:
        start = 0
        while start < m:
            if should_stop is not None and should_stop():
                return
            try:
                items = _run_child(supervisor, header, bars_fd, n, param_sets, start, limits, code, flags, should_stop)
                for item in items:
                    yield item
                    start = item.index + 1
                return  # the child answered every remaining combination (or was stopped)
            except _ChildGone as gone:
                yield BatchItem(gone.index, error=gone.error)
                start = gone.index + 1
    finally:
        os.close(bars_fd)


def _run_child(
    supervisor: Supervisor,
    header: dict[str, Any],
    bars_fd: int,
    n: int,
    param_sets: Sequence[dict[str, Any]],
    start: int,
    limits: SandboxLimits,
    code: bytes,
    flags: int,
    should_stop: Callable[[], bool] | None,
) -> Iterator[BatchItem]:
    """One child for param_sets[start:]; yields items with absolute indices; `_ChildGone` on a death."""
    remaining = [dict(p) for p in param_sets[start:]]
    limits_header = {
        **_limits_header(limits),
        "cpu_seconds": limits.cpu_seconds * len(remaining),  # the hard limit: the whole batch's budget
        "cpu_seconds_each": limits.cpu_seconds,
    }
    job = {**header, "params": {}, "batch": remaining, "limits": limits_header}
    pid, job_write, answer_read = supervisor._spawn(flags, bars_fd)
    current = start  # the combination the child is on (or will start next)
    try:
        try:
            wire.write_job(job_write, job, code)
        except BrokenPipeError:
            pass  # the child died before reading its job: its exit status says why
        finally:
            os.close(job_write)
        reader = wire.FrameReader(answer_read, {**_caps(n, limits), wire.COMBINATION: wire.COMBINATION_BODY.size})
        deadline = time.monotonic() + limits.wall_seconds
        layers: dict[str, Any] | None = None
        answer: Answer | None = None
        seen: set[int] = set()
        while True:
            try:
                frame = reader.read(deadline, should_stop)
            except wire.StopRequested:
                return
            except wire.Deadline:
                timeout = f"the strategy ran longer than its wall-clock limit of {limits.wall_seconds:g} s"
                raise _ChildGone(current, StrategyTimeout(f"{timeout} and was stopped")) from None
            except wire.ProtocolError as exc:
                raise _broke(current, str(exc)) from None
            except EOFError:
                status = supervisor._wait_exit(pid, _EXIT_WAIT_SECONDS)
                if layers is None:
                    raise SandboxUnavailable(
                        f"the sandbox child ended before it confined itself (wait status {status})"
                    ) from None
                raise _ChildGone(current, _death_error(status, limits)) from None
            kind = frame.kind
            if layers is None:
                if kind != wire.LAYERS:
                    raise _broke(current, "the first frame must be LAYERS")
                layers = json.loads(bytes(frame.payload))
                continue
            if kind == wire.PROGRESS:
                continue
            if answer is None:
                if kind == wire.ERROR:  # before any combination: the child cannot run any of them
                    error = _child_error(*wire.decode_error(frame.payload), layers=layers)
                    if isinstance(error, SandboxUnavailable):
                        raise error
                    raise _ChildGone(current, error)
                if kind != wire.COMBINATION:
                    raise _broke(current, f"frame kind {kind} outside a combination")
                (k,) = wire.COMBINATION_BODY.unpack(frame.payload)
                if k != current - start:
                    raise _broke(current, "combinations out of order")
                answer = Answer(layers=layers)
                seen = set()
                deadline = time.monotonic() + limits.wall_seconds
                continue
            if kind in seen or kind in (wire.LAYERS, wire.COMBINATION, wire.REPORT):
                raise _broke(current, f"frame kind {kind} out of place")
            seen.add(kind)
            if kind == wire.SIGNALS:
                if len(frame.payload) != 8 * n or wire.ORDERS in seen:
                    raise _broke(current, "SIGNALS must hold one float64 per bar")
                answer.signals = np.frombuffer(frame.payload, dtype="<f8")
            elif kind == wire.ORDERS:
                if len(frame.payload) % wire.ORDER_DTYPE.itemsize or wire.SIGNALS in seen:
                    raise _broke(current, "ORDERS must hold whole order records")
                answer.orders = np.frombuffer(frame.payload, dtype=wire.ORDER_DTYPE)
            elif kind == wire.LOGS:
                try:
                    answer.logs = wire.decode_logs(frame.payload, limits.max_log_lines)
                except wire.ProtocolError as exc:
                    raise _broke(current, str(exc)) from None
            elif kind in (wire.DONE, wire.ERROR):
                if kind == wire.ERROR:
                    item = BatchItem(current, error=_child_error(*wire.decode_error(frame.payload), layers=layers))
                else:
                    item = BatchItem(current, answer=answer)
                answer = None
                current += 1
                yield item
                if current == start + len(remaining):
                    return
                if should_stop is not None and should_stop():
                    return
                deadline = time.monotonic() + limits.wall_seconds
    finally:
        os.close(answer_read)
        # Done, stopped or failed: end the child now (the zygote reaps it) rather than wait for its exit.
        supervisor.kill(pid)
        supervisor._detach(pid)


def _broke(index: int, what: str) -> _ChildGone:
    return _ChildGone(index, StrategyError(f"the strategy process broke the result protocol: {what}"))
