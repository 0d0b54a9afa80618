"""What an optimization costs, roughly, before it runs: pure arithmetic, no numpy (the API functions size
an optimization's chunks and answer estimates with it). `search.estimate_seconds` is this one.

Measured on the batch path (`evaluate`) on one busy core of a 2-core machine, 100k one-minute bars:

- a vectorized SMA crossover: about 7 ms a combination (fills and metrics on the trusted side dominate:
  a fixed 1.5 ms plus 55 ns a bar);
- the same strategy event-style (`examples/sma_crossover_event.py`): about 120 ms a combination, 1.2 µs a
  bar more (the child calls `on_bar` once a bar).

A strategy that does more work per bar takes longer: these are for simple ones, and a service chunk that
runs over its time budget continues in a new invocation instead of failing (see
`backtest_service.optimization_runner`).
"""

from __future__ import annotations

from typing import Literal

SECONDS_PER_COMBINATION_FIXED = 0.0015
SECONDS_PER_COMBINATION_PER_BAR = 5.5e-8
SECONDS_PER_BAR_EVENT = 1.2e-6  # on top of the above, for an event-style strategy

Style = Literal["vectorized", "event"]


def estimate_seconds(combinations: int, bars: int, style: Style = "vectorized") -> float:
    """Rough single-core seconds for `combinations` backtests of `bars` bars (a simple strategy)."""
    per_bar = SECONDS_PER_COMBINATION_PER_BAR + (SECONDS_PER_BAR_EVENT if style == "event" else 0.0)
    return combinations * (SECONDS_PER_COMBINATION_FIXED + per_bar * bars)
