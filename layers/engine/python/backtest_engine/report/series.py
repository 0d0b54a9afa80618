"""The numbers a report draws, derived from a result and its bars: pure numpy, sized for a browser.

Every curve over bars is cut to a point budget by `downsample.extremes` (the method the equity endpoint
uses): each bucket keeps its first point, its minimum and its maximum, so a chart's envelope is exact and
the worst drawdown survives. Times leave here as whole UTC seconds (what the charts' time axes read).
What the result does not hold (buy-and-hold, drawdown periods, monthly and rolling returns) is computed
here from the result's own columns and the bars, with the conventions of `metric_definitions`: daily
returns are the last equity of each UTC day against the day before (the first against the initial
capital), buy-and-hold is bought at the first close without costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest_engine.downsample import extremes
from backtest_engine.metrics import daily_returns

# Point budgets. The equity panel's buckets keep the extremes of three series (equity, drawdown,
# buy-and-hold): 7 points a bucket, so 4,000 points are 571 buckets, finer than a chart's pixel width.
EQUITY_POINTS = 4_000
PRICE_POINTS = 3_000
TRADE_POINTS = 3_000  # P&L per trade over time
MAX_MARKERS = 2_000  # trades whose entry and exit are marked on the price chart
WORST_DRAWDOWNS = 5
HISTOGRAM_BINS = 40
ROLLING_DAYS = 63  # about three months of trading days; shorter histories use a third of their days
MIN_ROLLING_DAYS = 10


def seconds(times: np.ndarray) -> np.ndarray:
    """UTC datetime64 → whole seconds since the epoch (int64)."""
    return np.asarray(times).astype("datetime64[s]").astype(np.int64)


def _finite(values: np.ndarray) -> list[float | None]:
    """A float column as JSON wants it: NaN and ±inf as null."""
    out: list[float | None] = np.where(np.isfinite(values), values, np.nan).tolist()
    return [None if v != v else v for v in out]


@dataclass(frozen=True)
class EquityPanel:
    """Equity, buy-and-hold and drawdown at the same kept bars."""

    index: np.ndarray  # kept bar indices
    time: np.ndarray  # seconds
    equity: np.ndarray
    buy_hold: np.ndarray | None  # None without bars to compare against
    drawdown_pct: np.ndarray
    bars: int  # bars before downsampling

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "equity": self.equity,
            "buy_hold": self.buy_hold,
            "drawdown_pct": self.drawdown_pct,
            "bars": self.bars,
            "points": int(self.index.shape[0]),
        }


def buy_and_hold(close: np.ndarray, initial_capital: float) -> np.ndarray:
    """The equity of holding the instrument from the first close to the last, without costs."""
    close = np.asarray(close, dtype=np.float64)
    if close.shape[0] == 0 or not close[0] > 0:
        return np.full(close.shape, np.nan)
    return initial_capital * close / close[0]


def equity_panel(
    times: np.ndarray,
    equity: np.ndarray,
    drawdown_pct: np.ndarray,
    close: np.ndarray | None,
    initial_capital: float,
    points: int = EQUITY_POINTS,
) -> EquityPanel:
    equity = np.asarray(equity, dtype=np.float64)
    drawdown_pct = np.asarray(drawdown_pct, dtype=np.float64)
    bh = buy_and_hold(close, initial_capital) if close is not None and close.shape == equity.shape else None
    if equity.shape[0] == 0:
        kept = np.arange(0)
    elif bh is not None and np.isfinite(bh).all():
        kept = extremes(equity, points, drawdown_pct, bh)
    else:
        kept = extremes(equity, points, drawdown_pct)
    return EquityPanel(
        index=kept,
        time=seconds(np.asarray(times)[kept]),
        equity=equity[kept],
        buy_hold=None if bh is None else bh[kept],
        drawdown_pct=drawdown_pct[kept],
        bars=int(equity.shape[0]),
    )


def worst_drawdowns(times: np.ndarray, drawdown_pct: np.ndarray, top: int = WORST_DRAWDOWNS) -> list[dict[str, Any]]:
    """The `top` deepest drawdown periods, deepest first. A period is a maximal run of bars below the running
    peak (drawdown < 0), as the drawdown metrics count them: it starts at the bar that set the peak (the
    first bar if the peak is the initial capital), bottoms at its trough and ends at the first bar back at
    the peak (None if equity never recovered)."""
    dd = np.asarray(drawdown_pct, dtype=np.float64)
    n = dd.shape[0]
    if n == 0:
        return []
    below = dd < 0
    if not below.any():
        return []
    edges = np.diff(below.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # run = [start, stop)
    depths = np.minimum.reduceat(dd, starts)  # each run's own minimum: reduceat runs to the next start
    order = np.argsort(depths, kind="stable")[:top]
    times = np.asarray(times)
    out = []
    for k in order.tolist():
        start, stop = int(starts[k]), int(stops[k])
        trough = start + int(np.argmin(dd[start:stop]))
        peak = max(start - 1, 0)
        recovered = stop < n
        end = stop if recovered else n - 1
        t = seconds(times[[peak, trough, end]]).tolist()
        out.append(
            {
                "peak_time": t[0],
                "trough_time": t[1],
                "end_time": t[2],
                "recovered": recovered,
                "depth_pct": float(dd[trough]),
                "days": (t[2] - t[0]) / 86_400.0,
                "bars": end - peak,
            }
        )
    return out


def monthly_returns(times: np.ndarray, equity: np.ndarray, initial_capital: float) -> dict[str, Any]:
    """Returns per calendar month (UTC) and per year, in percent: each month's last equity against the month
    before's (the first against the initial capital), each year's compounded from its months."""
    equity = np.asarray(equity, dtype=np.float64)
    if equity.shape[0] == 0:
        return {"years": [], "months": [], "year_total": []}
    labels, ends = _month_ends(np.asarray(times))
    last = equity[ends]
    prev = np.concatenate(([initial_capital], last[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = (last / prev - 1.0) * 100.0
    years = labels // 12 + 1970
    first_year, last_year = int(years[0]), int(years[-1])
    grid = np.full((last_year - first_year + 1, 12), np.nan)
    grid[years - first_year, labels % 12] = ret
    # the year's total: its last month-end equity against the previous year's last (or the initial capital)
    year_ends = np.append(np.flatnonzero(years[1:] != years[:-1]), years.shape[0] - 1)
    year_last = last[year_ends]
    year_prev = np.concatenate(([initial_capital], year_last[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        totals = (year_last / year_prev - 1.0) * 100.0
    year_list = list(range(first_year, last_year + 1))
    total_by_year = dict(zip(years[year_ends].tolist(), _finite(totals), strict=True))
    return {
        "years": year_list,
        "months": [_finite(row) for row in grid],
        "year_total": [total_by_year.get(y) for y in year_list],
    }


def _month_ends(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(months since 1970-01 that have bars, index of each one's last bar) for ascending UTC `times`: each
    month's end searched among the times, not every bar labelled."""
    t = times.astype("datetime64[ns]", copy=False)
    first, last = (int(m) for m in t[[0, -1]].astype("datetime64[M]").astype(np.int64))
    labels = np.arange(first, last + 1, dtype=np.int64)
    ends = np.searchsorted(t, (labels + 1).astype("datetime64[M]").astype("datetime64[ns]"), side="left") - 1
    has_bars = np.diff(ends, prepend=-1) > 0
    return labels[has_bars], ends[has_bars]


def rolling_risk(
    times: np.ndarray, equity: np.ndarray, initial_capital: float, periods_per_year: int, window: int | None = None
) -> dict[str, Any]:
    """Rolling annualized Sharpe ratio and volatility (percent) over `window` daily returns, risk-free 0,
    as the Sharpe ratio and volatility metrics compute them over the whole run."""
    labels, r = daily_returns(times, equity, initial_capital)
    d = r.shape[0]
    if window is None:
        window = ROLLING_DAYS if d >= 2 * ROLLING_DAYS else max(MIN_ROLLING_DAYS, d // 3)
    if d < max(window, 2) or window < 2:
        return {"window": window, "time": [], "sharpe": [], "volatility_pct": [], "days": d}
    r = np.where(np.isfinite(r), r, 0.0)
    c1 = np.concatenate(([0.0], np.cumsum(r)))
    c2 = np.concatenate(([0.0], np.cumsum(r * r)))
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    mean = s1 / window
    var = np.maximum(s2 - s1 * mean, 0.0) / (window - 1)
    std = np.sqrt(var)
    scale = np.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 1e-12, mean / std * scale, np.nan)
    day_seconds = labels[window - 1 :].astype("datetime64[s]").astype(np.int64)
    return {
        "window": window,
        "time": day_seconds,
        "sharpe": _finite(sharpe),
        "volatility_pct": _finite(std * scale * 100.0),
        "days": d,
    }


def trade_histogram(return_pct: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Counts of trade returns (percent) in `bins` equal bins; a bin edge always falls on 0, so each bin
    holds only losses or only gains."""
    r = np.asarray(return_pct, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.shape[0] == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(r.min()), float(r.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    # shift the edges so that 0 is one of them (when 0 lies inside the range)
    if lo < 0 < hi:
        k = np.ceil(-lo / width)
        lo = -k * width
        bins = int(np.ceil((hi - lo) / width))
    edges = lo + width * np.arange(bins + 1)
    edges[-1] = max(edges[-1], hi)
    counts, _ = np.histogram(r, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def trade_pnl(exit_time: np.ndarray, pnl: np.ndarray, points: int = TRADE_POINTS) -> dict[str, Any]:
    """P&L per trade at its exit, in exit order; beyond `points` trades, the extremes of each bucket kept."""
    pnl = np.asarray(pnl, dtype=np.float64)
    n = pnl.shape[0]
    kept = extremes(pnl, points) if n else np.arange(0)
    return {"time": seconds(np.asarray(exit_time)[kept]), "pnl": pnl[kept], "trades": n, "points": len(kept)}


def price_panel(
    times: np.ndarray,
    close: np.ndarray,
    trades: Any,
    points: int = PRICE_POINTS,
    max_markers: int = MAX_MARKERS,
) -> dict[str, Any]:
    """The close, downsampled with its extremes, and the entry and exit fills of the first `max_markers`
    trades (time, price, side): long entries, short entries, exits."""
    close = np.asarray(close, dtype=np.float64)
    kept = extremes(close, points) if close.shape[0] else np.arange(0)
    n = len(trades)
    m = min(n, max_markers)
    side = np.asarray(trades.side[:m]).astype(np.int64)
    entry_t = seconds(np.asarray(trades.entry_time[:m]))
    exit_t = seconds(np.asarray(trades.exit_time[:m]))
    entry_p = np.asarray(trades.entry_price[:m], dtype=np.float64)
    exit_p = np.asarray(trades.exit_price[:m], dtype=np.float64)
    won = np.asarray(trades.pnl[:m], dtype=np.float64) > 0
    return {
        "time": seconds(np.asarray(times)[kept]),
        "close": close[kept],
        "bars": int(close.shape[0]),
        "long_entry": {"time": entry_t[side > 0], "price": entry_p[side > 0]},
        "short_entry": {"time": entry_t[side < 0], "price": entry_p[side < 0]},
        "exit_win": {"time": exit_t[won], "price": exit_p[won]},
        "exit_loss": {"time": exit_t[~won], "price": exit_p[~won]},
        "trades": n,
        "marked": m,
    }
