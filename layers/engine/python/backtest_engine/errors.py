"""Typed errors of the engine. Each has a stable `code` the API and the job record report.

`UserInputError`s are the caller's to fix (HTTP 4xx); `StrategyFault`s end a job FAILED without a
retry, because running the same code again gives the same fault.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "EngineError"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.code, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __reduce__(self):  # keep `line` when pickled across the sandbox's process boundary
        return (_rebuild, (type(self), self.message, self.line))


def _rebuild(cls: type[EngineError], message: str, line: int | None) -> EngineError:
    return cls(message, line=line)


class UserInputError(EngineError):
    """The request cannot run as given (bad symbol, dates, data file, parameters)."""

    code = "InvalidRequest"


class DataError(UserInputError):
    """User-supplied market data is unusable (names the row or column)."""

    code = "InvalidMarketData"


class StrategyCompileError(UserInputError):
    """The strategy has a syntax error or breaks the sandbox policy (names the line)."""

    code = "StrategyCompileError"


class StrategyFault(EngineError):
    """The strategy failed while running. Not retried: the same code fails the same way."""

    code = "StrategyFault"


class StrategyError(StrategyFault):
    """The strategy raised an exception (names the line of the strategy and the exception)."""

    code = "StrategyError"


class StrategyTimeout(StrategyFault):
    """The strategy used more CPU or wall time than its limit."""

    code = "StrategyTimeout"


class StrategyMemoryError(StrategyFault):
    """The strategy used more memory than its limit."""

    code = "StrategyMemoryError"


class StrategyOutputLimit(StrategyFault):
    """The strategy printed or logged more than its limit."""

    code = "StrategyOutputLimit"


class StrategyPolicyViolation(StrategyFault):
    """The strategy tried, at run time, something the sandbox refuses (a file, a denied attribute)."""

    code = "StrategyPolicyViolation"


class InvalidSignals(StrategyFault):
    """The strategy returned signals of the wrong length, type or range."""

    code = "InvalidSignals"


class LookAheadError(StrategyFault):
    """An indicator or signal changed its past values when more data arrived: it reads the future."""

    code = "LookAheadError"
