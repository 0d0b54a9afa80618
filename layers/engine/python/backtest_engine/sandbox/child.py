"""What a sandbox child does after the zygote forked it: read its job, confine itself, run the strategy,
send back what it decided.

File descriptors on entry: 0/1/2 are /dev/null, 3 reads the job, 4 writes the answer (`wire` frames), 5 is
the job's bars (a sealed memfd, mapped read-only and closed at once), and nothing else is open. The job is
read and the strategy's code loaded *before* `confinement.confine` (both are the trusted side's own bytes);
strategy code runs only after it, and only when the core layers are in place. The bars the strategy sees
are a private read-only mapping of the job's sealed copy (vectorized strategies get a writable copy of the
frame on each call), never the trusted side's arrays.
"""

from __future__ import annotations

import builtins
import json
import marshal
import math
import os
import resource
import warnings
from typing import Any

import numpy as np

from backtest_engine.bars import Bars
from backtest_engine.broker import Costs
from backtest_engine.errors import EngineError, StrategyMemoryError
from backtest_engine.runtime import Decisions, execute
from backtest_engine.sandbox import confinement, wire
from backtest_engine.sandbox.compiler import CompiledStrategy, compile_strategy
from backtest_engine.sandbox.log import StrategyLog
from backtest_engine.sandbox.zygote import FLAG_PROBE, FLAG_SECCOMP, FLAG_UNRESTRICTED


def serve(job_fd: int, out_fd: int, bars_fd: int, flags: int) -> int:
    """Run one job; returns the process exit code (0 also when the strategy failed: that is reported)."""
    header, code = wire.read_job(wire.FrameReader(job_fd, {wire.JOB: 1 << 40}).read().payload)
    os.close(job_fd)
    columns = wire.map_bars(bars_fd, int(header["bars"]))
    os.close(bars_fd)
    limits = header["limits"]
    bars = _bars(header, columns)
    strategy = None
    compile_error: EngineError | None = None
    if code:  # compiled by the trusted side from the same source, with the same compiler
        strategy = CompiledStrategy(style=header["style"], source=header["source"], code=marshal.loads(code))
    elif not flags & (FLAG_UNRESTRICTED | FLAG_PROBE):
        try:
            strategy = compile_strategy(header["source"])
        except EngineError as exc:
            compile_error = exc
    warnings.simplefilter("ignore")  # a warning's source line cannot be read in here anyway
    layers = confinement.confine(
        cpu_seconds=float(limits["cpu_seconds"]),
        memory_bytes=int(limits["memory_mb"]) << 20,
        use_seccomp=bool(flags & FLAG_SECCOMP),
        recursion_limit=int(limits["recursion_limit"]),
    )
    wire.write_frame(out_fd, wire.LAYERS, json.dumps(layers.to_dict()).encode())
    if not layers.core:
        wire.write_frame(out_fd, wire.ERROR, wire.encode_error(wire.SANDBOX_UNAVAILABLE, None, "; ".join(layers.notes)))
        return 0
    if flags & FLAG_PROBE:
        _report(out_fd, probe())
        return 0
    if flags & FLAG_UNRESTRICTED:
        _report(out_fd, _run_unrestricted(header["source"]))
        return 0
    if compile_error is not None:
        _send_error(out_fd, compile_error)
        return 0
    assert strategy is not None
    if "batch" in header:
        return _serve_batch(out_fd, strategy, bars, header)
    log = StrategyLog(int(limits["max_log_lines"]), int(limits["max_log_bytes"]))

    def progress(done: int, total: int) -> None:
        wire.write_frame(out_fd, wire.PROGRESS, wire.PROGRESS_BODY.pack(done, total))

    try:
        decisions = execute(
            strategy,
            bars,
            dict(header["params"]),
            float(header["initial_capital"]),
            Costs(float(header["commission"]), float(header["slippage"]), bars.lot_size),
            log,
            check_lookahead=bool(header["check_lookahead"]),
            progress=progress,
        )
        _send_decisions(out_fd, decisions, log)
    except BaseException as exc:
        _send_failure(out_fd, exc, log)
    return 0


def _send_decisions(out_fd: int, decisions: Decisions, log: StrategyLog) -> None:
    """A run's answer: its signals or orders, its log lines, DONE (the memory cap lifted to write them)."""
    confinement.allow_reporting()
    if decisions.signals is not None:
        wire.write_frame(out_fd, wire.SIGNALS, np.ascontiguousarray(decisions.signals, dtype="<f8"))
    else:
        assert decisions.orders is not None
        wire.write_frame(out_fd, wire.ORDERS, decisions.orders)
    wire.write_frame(out_fd, wire.LOGS, wire.encode_logs(log.lines))
    wire.write_frame(out_fd, wire.DONE)


def _send_failure(out_fd: int, exc: BaseException, log: StrategyLog) -> None:
    """A run that raised: its log lines, then the typed error (a kind, never a class, crosses the wire)."""
    confinement.allow_reporting()
    if isinstance(exc, EngineError):
        error = exc
    elif isinstance(exc, MemoryError):
        error = StrategyMemoryError("the strategy ran out of memory")
    else:
        error = EngineError(f"{type(exc).__name__} in the strategy runtime")
    wire.write_frame(out_fd, wire.LOGS, wire.encode_logs(log.lines))
    _send_error(out_fd, error)


# ---- batch jobs (parameter optimization) ---------------------------------------------------------


def _serve_batch(out_fd: int, strategy: CompiledStrategy, bars: Bars, header: dict[str, Any]) -> int:
    """Run the strategy once per parameter set of ``header["batch"]``, in order, each in a fresh module
    namespace (`CompiledStrategy.load` inside `execute`) with a fresh log, so nothing one combination
    leaves behind reaches the next; send each combination's decisions (or its typed error) after a
    `COMBINATION` frame naming it. A failing combination does not end the batch.

    Limits: the child was confined with the batch's whole CPU budget as its hard limit; before each
    combination the soft limit is set to what it has used plus one combination's budget, so a runaway
    combination is stopped (SIGXCPU) after its own budget; the memory cap, lifted for reporting, is put
    back before the next combination runs."""
    limits = header["limits"]
    each = max(1, math.ceil(float(limits["cpu_seconds_each"])))
    costs = Costs(float(header["commission"]), float(header["slippage"]), bars.lot_size)
    capital = float(header["initial_capital"])
    check_lookahead = bool(header["check_lookahead"])
    _, memory_hard = resource.getrlimit(resource.RLIMIT_AS)
    memory_soft = memory_hard - confinement.AS_HEADROOM_BYTES if memory_hard != resource.RLIM_INFINITY else memory_hard
    for k, params in enumerate(header["batch"]):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + each
        resource.setrlimit(resource.RLIMIT_CPU, (min(soft, cpu_hard), cpu_hard))
        resource.setrlimit(resource.RLIMIT_AS, (memory_soft, memory_hard))
        log = StrategyLog(int(limits["max_log_lines"]), int(limits["max_log_bytes"]))
        wire.write_frame(out_fd, wire.COMBINATION, wire.COMBINATION_BODY.pack(k))
        try:
            decisions = execute(strategy, bars, dict(params), capital, costs, log, check_lookahead=check_lookahead)
            _send_decisions(out_fd, decisions, log)
        except BaseException as exc:
            _send_failure(out_fd, exc, log)
        del log
    return 0


def _bars(header: dict[str, Any], columns: dict[str, np.ndarray]) -> Bars:
    return Bars(
        str(header["symbol"]),
        str(header["timeframe"]),
        columns["times"],
        columns["open"],
        columns["high"],
        columns["low"],
        columns["close"],
        columns["volume"],
        float(header["lot_size"]),
        int(header["periods_per_year"]),
    )


def _send_error(out_fd: int, error: EngineError) -> None:
    kind = next((k for k, cls in reversed(list(enumerate(wire.ERROR_KINDS))) if isinstance(error, cls)), 0)
    try:
        message = str(error.message)
    except Exception:
        message = type(error).__name__
    wire.write_frame(out_fd, wire.ERROR, wire.encode_error(kind, error.line, message))


def _report(out_fd: int, report: dict[str, Any]) -> None:
    wire.write_frame(out_fd, wire.REPORT, json.dumps(report, default=repr).encode()[: wire.MAX_REPORT_BYTES])
    wire.write_frame(out_fd, wire.DONE)


def probe() -> dict[str, Any]:
    """Trusted code, run confined: what each kind of reach gets (every entry should say it was refused)."""
    attempts: dict[str, Any] = {}

    def attempt(name: str, action: Any) -> None:
        try:
            action()
            attempts[name] = "ALLOWED"
        except BaseException as exc:
            attempts[name] = f"refused: {type(exc).__name__}: {exc}"[:200]

    attempt("open_file", lambda: os.open("/etc/hostname", os.O_RDONLY))
    attempt("open_proc_environ", lambda: os.open(f"/proc/{os.getppid()}/environ", os.O_RDONLY))
    attempt("socket", lambda: __import__("socket").socket())
    attempt("pipe", os.pipe)
    attempt("fork", lambda: os._exit(0) if os.fork() == 0 else None)
    attempt("thread", lambda: __import__("threading").Thread(target=lambda: None).start())
    return {"attempts": attempts}


def _run_unrestricted(source: str) -> dict[str, Any]:
    """TEST ONLY (the zygote refuses the flag unless it was started with ``--allow-unrestricted``): run plain
    Python with the real builtins, as a strategy that got past the language layer would, and return the
    dict it leaves in ``result``."""
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "escaped"}
    try:
        exec(compile(source, "<escaped>", "exec"), namespace)
    except BaseException as exc:
        return {"crashed": f"{type(exc).__name__}: {exc}"}
    result = namespace.get("result", {})
    return result if isinstance(result, dict) else {"result": repr(result)}
