"""Walk-forward and holdout validation: where the folds lie, and the out-of-sample parts stitched together.

With n bars, `windows` = w folds and out-of-sample fraction r, every out-of-sample part holds
``oos = floor(n·r / ((1 − r) + w·r))`` bars and every in-sample part ``is = n − w·oos`` (so a fold is
is + oos bars with oos ≈ r of it). Fold i (0-based) optimizes on bars ``[i·oos, i·oos + is)`` (anchored:
``[0, i·oos + is)``) and runs its winner on ``[i·oos + is, (i + 1)·oos + is)``: the out-of-sample parts
follow each other without gap or overlap up to the last bar. Holdout is one fold (w = 1): in-sample the
first ``n − floor(n·r)`` bars, out-of-sample the rest.

The stitched out-of-sample result chains the folds' out-of-sample runs as if each had started with the
equity the one before ended with: fold i's equity, position sizes, pnl and commissions are scaled by
the product of the earlier folds' final equity / initial capital (lot rounding of the scaled sizes is
not redone); its metrics are `compute_metrics` over that chained curve and its trades.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backtest_engine.bars import Bars
from backtest_engine.broker import Ledger
from backtest_engine.metrics import MetricInputs, MetricResult, TradeRecords, compute_metrics

# The folds themselves need no numpy (the API functions plan with them): `folds` holds them, re-exported here.
from backtest_engine.optimization.folds import MIN_PART_BARS, Fold, folds

__all__ = ["MIN_PART_BARS", "Fold", "folds", "span", "stitched_metrics"]


def span(bars: Bars, part: tuple[int, int]) -> dict[str, object]:
    """{start, end, bars}: the ISO times of a part's first and last bar."""
    a, b = part

    def iso(t: np.datetime64) -> str:
        return str(np.datetime_as_string(t, unit="s")) + "Z"

    return {"start": iso(bars.times[a]), "end": iso(bars.times[b - 1]), "bars": b - a}


def stitched_metrics(
    bars: Bars, parts: Sequence[tuple[int, int]], ledgers: Sequence[Ledger], initial_capital: float
) -> tuple[dict[str, MetricResult], dict[str, str]]:
    """The metrics of the out-of-sample runs chained together (see the module docstring)."""
    scale = 1.0
    equity, position, trades = [], [], []
    commission = 0.0
    for (a, _), ledger in zip(parts, ledgers, strict=True):
        equity.append(ledger.equity * scale)
        position.append(ledger.position * scale)
        t = ledger.trades
        trades.append(
            TradeRecords(
                entry_bar=t.entry_bar + a - parts[0][0],
                exit_bar=t.exit_bar + a - parts[0][0],
                side=t.side,
                size=t.size * scale,
                entry_price=t.entry_price,
                exit_price=t.exit_price,
                pnl=t.pnl * scale,
                return_pct=t.return_pct,
                commission=t.commission * scale,
                closed_by_end=t.closed_by_end,
            )
        )
        commission += ledger.total_commission * scale
        final = float(ledger.equity[-1]) if ledger.equity.shape[0] else initial_capital
        scale *= max(final, 0.0) / initial_capital
    start, stop = parts[0][0], parts[-1][1]
    names = list(TradeRecords.__dataclass_fields__)
    merged = TradeRecords(**{name: np.concatenate([getattr(t, name) for t in trades]) for name in names})
    return compute_metrics(
        MetricInputs(
            times=bars.times[start:stop],
            equity=np.concatenate(equity),
            close=bars.close[start:stop],
            position=np.concatenate(position),
            initial_capital=initial_capital,
            periods_per_year=bars.periods_per_year,
            trades=merged,
            total_commission=commission,
        )
    )
