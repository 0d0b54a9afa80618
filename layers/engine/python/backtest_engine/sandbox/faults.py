"""`translate_exception`: an exception from strategy code → the typed `EngineError` the caller reports."""

from __future__ import annotations

from backtest_engine.errors import (
    EngineError,
    StrategyError,
    StrategyMemoryError,
    StrategyPolicyViolation,
)
from backtest_engine.sandbox.compiler import FILENAME
from backtest_engine.sandbox.policy import PolicyViolation

MAX_MESSAGE_CHARS = 1000  # error messages end up in job records (DynamoDB items are capped at 400 KB)


def strategy_line(exc: BaseException) -> int | None:
    """Line of the deepest traceback frame that runs strategy code, or None."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error itself
        text = ""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + f"… ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    return text


def translate_exception(exc: BaseException) -> EngineError:
    """Map `exc` to the typed error the job reports.

    - `EngineError` (``StrategyOutputLimit``, ``InvalidSignals``, ...) passes through unchanged;
    - `PolicyViolation` → `StrategyPolicyViolation` ("line 4: numpy.load is not allowed ...");
    - `MemoryError` → `StrategyMemoryError`; `RecursionError` → `StrategyError` naming recursion;
    - any other exception raised in strategy code → `StrategyError("line 7: ZeroDivisionError: division
      by zero", line=7)`, the line being the deepest strategy frame of the traceback;
    - an exception with no strategy frame at all is the engine's own fault: a plain `EngineError`
      (retried as infrastructure, then dead-lettered where ops can replay it after a fix).
    """
    if isinstance(exc, EngineError):
        return exc
    line = strategy_line(exc)
    where = f"line {line}: " if line is not None else ""
    text = _text(exc)
    if isinstance(exc, PolicyViolation):
        return StrategyPolicyViolation(f"{where}{text}", line=line)
    if isinstance(exc, MemoryError):
        detail = f" ({text})" if text else ""
        return StrategyMemoryError(f"{where}the strategy ran out of memory{detail}", line=line)
    if isinstance(exc, RecursionError):
        return StrategyError(
            f"{where}RecursionError: the strategy recursed too deeply ({text or 'maximum recursion depth exceeded'}); "
            "use a loop instead",
            line=line,
        )
    name = type(exc).__name__
    described = f"{name}: {text}" if text else name
    if line is None:
        return EngineError(f"engine error outside the strategy code: {described}")
    return StrategyError(f"{where}{described}", line=line)
