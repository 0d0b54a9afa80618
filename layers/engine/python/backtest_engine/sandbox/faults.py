"""`translate_exception`: an exception from strategy code → the typed `EngineError` the caller reports.

Whatever the strategy raised, the result is safe for the trusted side: one of the engine's own error
classes, a message that is a ``str`` of at most `MAX_MESSAGE_CHARS` characters (computed here even when
the exception's ``__str__`` is broken, huge, or returns something else), and a line that is an ``int`` or
None.
"""

from __future__ import annotations

from backtest_engine.errors import (
    EngineError,
    InvalidSignals,
    LookAheadError,
    StrategyError,
    StrategyFault,
    StrategyMemoryError,
    StrategyOutputLimit,
    StrategyPolicyViolation,
    StrategyTimeout,
)
from backtest_engine.sandbox.compiler import FILENAME
from backtest_engine.sandbox.policy import PolicyViolation, is_strategy_class

MAX_MESSAGE_CHARS = 1000  # error messages end up in job records (DynamoDB items are capped at 400 KB)
MAX_NAME_CHARS = 100

# The engine's errors that a strategy's run can end with, rebuilt as such when they come out of strategy
# code (a strategy that catches one can raise it again; it cannot make one: `type()` of it is a guard).
_FAULTS: frozenset[type[EngineError]] = frozenset(
    {
        StrategyFault,
        StrategyError,
        StrategyTimeout,
        StrategyMemoryError,
        StrategyOutputLimit,
        StrategyPolicyViolation,
        InvalidSignals,
        LookAheadError,
    }
)


def strategy_line(exc: BaseException) -> int | None:
    """Line of the deepest traceback frame that runs strategy code, or None."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def cap_message(text: str) -> str:
    """`text` at most `MAX_MESSAGE_CHARS` characters (noting how many were cut), encodable as UTF-8."""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + f"… ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    # lone surrogates cannot be encoded to UTF-8 (JSON, DynamoDB): replace them
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(exc: BaseException) -> str:
    """``str(exc)`` as a capped ``str``; a broken ``__str__`` (it raises, returns a non-string, prints
    past the log limit...) must not hide the error itself."""
    try:
        text = str(exc)
    except Exception as broken:
        return f"(its message could not be shown: {_name(type(broken))})"
    if type(text) is not str:  # a str subclass: take the characters, not its methods
        text = str.__str__(text)
    return cap_message(text)


def _name(cls: type) -> str:
    try:
        name = cls.__name__
    except Exception:
        return "Exception"
    if type(name) is not str:
        return "Exception"
    return name[:MAX_NAME_CHARS]


def _engine_message(exc: EngineError) -> str:
    message = exc.__dict__.get("message")
    if type(message) is str:
        return cap_message(message)
    return _text(exc)


def translate_exception(exc: BaseException) -> EngineError:
    """Map `exc` to the typed error the job reports.

    - an `EngineError` the engine raised outside strategy code (``InvalidSignals`` for bad signals...)
      passes through unchanged;
    - an `EngineError` that comes out of strategy code (``StrategyOutputLimit`` raised by ``print``, or one
      the strategy caught and raised again) is rebuilt as the same class with a capped ``str`` message and
      an ``int``/None line; any other `EngineError` class from there becomes a `StrategyError`;
    - `PolicyViolation` → `StrategyPolicyViolation` ("line 4: numpy.load is not allowed ...");
    - `MemoryError` → `StrategyMemoryError`; `RecursionError` → `StrategyError` naming recursion;
    - any other exception raised in strategy code, or whose class the strategy defined →
      `StrategyError("line 7: ZeroDivisionError: division by zero", line=7)`, the line being the deepest
      strategy frame of the traceback;
    - an exception with no strategy frame at all (and not of a strategy class) is the engine's own fault: a
      plain `EngineError` (retried as infrastructure, then dead-lettered where ops can replay it after a
      fix).
    """
    line = strategy_line(exc)
    where = f"line {line}: " if line is not None else ""
    if isinstance(exc, EngineError):
        if line is None:
            return exc
        own_line = exc.__dict__.get("line")
        kept_line = own_line if type(own_line) is int else None
        if type(exc) in _FAULTS:
            return type(exc)(_engine_message(exc), line=kept_line)
        return StrategyError(f"{where}{_name(type(exc))}: {_engine_message(exc)}", line=line)
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
    name = _name(type(exc))
    described = f"{name}: {text}" if text else name
    if line is None and not is_strategy_class(type(exc)):
        return EngineError(f"engine error outside the strategy code: {described}")
    return StrategyError(f"{where}{described}", line=line)
