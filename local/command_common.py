"""What every `backtest` command shares: its exit codes, declared once (the README's CLI section lists them),
and the one way a command reads its strategy file."""

import sys
from pathlib import Path

EXIT_OK = 0
EXIT_UNAVAILABLE = 1  # the service, the stack or AWS could not do it: trying again later may work
EXIT_BAD_INPUT = 2  # the command's input (a file, a flag, the request) is wrong: the message says which
EXIT_JOB_FAILED = 3  # the backtest or optimization ran and failed (or was cancelled): the message says why


def read_strategy(path: Path) -> str | None:
    """The strategy's source, or None after saying on stderr why it cannot be read (exit `EXIT_BAD_INPUT`)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read strategy {path}: {exc.strerror}", file=sys.stderr)
        return None
