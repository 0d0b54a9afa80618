"""`StrategyLog`: the bounded sink behind a strategy's ``print()`` and ``ctx.log()``."""

from __future__ import annotations

from backtest_engine.errors import StrategyOutputLimit


class StrategyLog:
    """Collects what a strategy prints, one entry per ``print`` / ``ctx.log`` call.

    `write` raises `StrategyOutputLimit` once the next entry would pass ``max_lines`` entries or
    ``max_bytes`` bytes (UTF-8) in total; the entry is then not kept, and every later write raises too,
    so a strategy that catches the error still cannot print past the limit.
    """

    __slots__ = ("_bytes", "lines", "max_bytes", "max_lines", "overflowed")

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.lines: list[str] = []
        self.overflowed = False
        self._bytes = 0

    def write(self, message: str) -> None:
        message = str(message)
        if message.endswith("\n"):
            message = message[:-1]
        size = len(message.encode("utf-8", "surrogatepass"))
        if len(self.lines) >= self.max_lines:
            self.overflowed = True
            raise StrategyOutputLimit(
                f"the strategy printed more than {self.max_lines} lines (print and ctx.log share this limit); "
                "print less often, e.g. only when a trade happens"
            )
        if self._bytes + size > self.max_bytes:
            self.overflowed = True
            raise StrategyOutputLimit(
                f"the strategy printed more than {self.max_bytes} bytes (print and ctx.log share this limit); "
                "print shorter or fewer lines"
            )
        self.lines.append(message)
        self._bytes += size

    def text(self) -> str:
        """Everything written so far, one entry per line."""
        return "\n".join(self.lines)
