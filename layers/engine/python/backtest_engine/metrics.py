"""Performance metrics: one small function per metric declared in `metric_definitions`.

`compute_metrics` walks `METRIC_DEFINITIONS` in order and calls the function registered for each key
(``@metric("key")``); the module refuses to import if a declared key has no function or a function has
no declaration. A function returns a number or raises `Undefined(reason)`: the metric is then None and
the reason goes to the notes. Nothing returned is ever NaN or infinite.

Shared quantities (daily returns, the drawdown curve, trade masks) are computed once per call by
`_Basis`, vectorized with numpy. Daily resampling uses integer day labels (``datetime64[D]``) and the
positions where the label changes, never pandas: the whole computation on 1M bars and 50k trades
takes a few tens of milliseconds.

Conventions (DESIGN.md "Metrics"; the formulas are spelled out in `metric_definitions`):
daily returns = the last equity of each UTC calendar day against the previous day's last equity, the
first day against the initial capital; risk-free rate 0; N = periods per year; max drawdown on every
bar's equity against its running peak (which starts at the initial capital).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from backtest_engine.metric_definitions import METRIC_DEFINITIONS, METRIC_KEYS

MetricResult = float | int | None

_NS_PER_DAY = 86_400 * 10**9
_SIGNIFICANT_DIGITS = 12  # outputs are rounded to 12 significant digits: float noise goes, precision stays
_ZERO_DISPERSION = 1e-12  # a std below this fraction of the largest |value| counts as zero (constant data)


# ---- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TradeRecords:
    """One entry per closed trade, in exit order (numpy arrays of equal length)."""

    entry_bar: np.ndarray  # int64
    exit_bar: np.ndarray  # int64
    side: np.ndarray  # int8: +1 long, -1 short
    size: np.ndarray  # float64 units (largest absolute size held)
    entry_price: np.ndarray  # float64
    exit_price: np.ndarray  # float64
    pnl: np.ndarray  # float64 money, net of the trade's commissions
    return_pct: np.ndarray  # float64 percent of money put in (size * entry_price)
    commission: np.ndarray  # float64 money
    closed_by_end: np.ndarray  # bool

    def __post_init__(self) -> None:
        lengths = {name: len(getattr(self, name)) for name in self.__dataclass_fields__}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"TradeRecords arrays must have equal lengths; got {lengths}")

    def __len__(self) -> int:
        return len(self.pnl)

    @classmethod
    def empty(cls) -> TradeRecords:
        f = np.empty(0, dtype=np.float64)
        return cls(
            entry_bar=np.empty(0, dtype=np.int64),
            exit_bar=np.empty(0, dtype=np.int64),
            side=np.empty(0, dtype=np.int8),
            size=f,
            entry_price=f,
            exit_price=f,
            pnl=f,
            return_pct=f,
            commission=f,
            closed_by_end=np.empty(0, dtype=bool),
        )


@dataclass(frozen=True, eq=False)
class MetricInputs:
    """What the metrics read: per-bar arrays (equal lengths, times ascending) and the trades."""

    times: np.ndarray  # datetime64[ns] (UTC), one per bar
    equity: np.ndarray  # float64, equity marked at each bar's close
    close: np.ndarray  # float64, the instrument's close per bar (buy-and-hold, alpha/beta)
    position: np.ndarray  # float64, units held at each bar's close (exposure)
    initial_capital: float
    periods_per_year: int  # 252 equities, 365 crypto
    trades: TradeRecords
    total_commission: float  # all fills' commissions


class Undefined(Exception):
    """Raised by a metric function when its value is undefined; the message is the note's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---- public helpers -------------------------------------------------------------------------------


def _day_ends(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day labels, index of each day's last bar) for ascending `times`.

    Searches each day's end among the times (days × log(bars)) instead of labelling every bar."""
    t = np.asarray(times).astype("datetime64[ns]", copy=False).view(np.int64)
    n = t.shape[0]
    if n == 0:
        return np.empty(0, dtype="datetime64[D]"), np.empty(0, dtype=np.int64)
    first, last = int(t[0]) // _NS_PER_DAY, int(t[-1]) // _NS_PER_DAY
    if last - first > 4 * n + 1024:  # very sparse times: label every bar instead
        days = t // _NS_PER_DAY
        ends = np.append(np.flatnonzero(days[1:] != days[:-1]), n - 1)
        return days[ends].astype("datetime64[D]"), ends
    labels = np.arange(first, last + 1, dtype=np.int64)
    ends = np.searchsorted(t, (labels + 1) * _NS_PER_DAY, side="left") - 1  # last bar before the next day
    has_bars = np.diff(ends, prepend=-1) > 0
    return labels[has_bars].astype("datetime64[D]"), ends[has_bars]


def _chained_returns(last_values: np.ndarray, base: float) -> np.ndarray:
    """Each value against the one before it, the first against `base`."""
    prev = np.empty_like(last_values)
    if prev.shape[0]:
        prev[0] = base
        prev[1:] = last_values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return last_values / prev - 1.0


def daily_returns(times: np.ndarray, equity: np.ndarray, initial_capital: float) -> tuple[np.ndarray, np.ndarray]:
    """(UTC day labels as datetime64[D], daily returns): the last equity of each UTC calendar day against
    the previous day's last equity, the first day against `initial_capital`. A day after one that ended
    at zero equity or below gives inf/NaN here; `compute_metrics` turns that into None with a note."""
    labels, ends = _day_ends(times)
    return labels, _chained_returns(np.asarray(equity, dtype=np.float64)[ends], float(initial_capital))


def drawdown_percent(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """Per-bar drawdown in percent (≤ 0): ``(E / peak − 1) · 100``, peak = running max starting at C0.
    The same curve the drawdown metrics read; use it for the result's equity curve."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = running_max(equity, float(initial_capital))
    return (equity / peak - 1.0) * 100.0


# ---- shared quantities ----------------------------------------------------------------------------


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in `mask`."""
    if not mask.any():
        return 0
    edges = np.diff(mask.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


_PEAK_BLOCK = 4096


def running_max(values: np.ndarray, start: float) -> np.ndarray:
    """max(start, values[0..i]) for every i, exactly as ``np.maximum(np.maximum.accumulate(values), start)``.

    By blocks: a block whose maximum does not beat the peak carried into it is that peak throughout, so
    only the blocks holding a new high need the sequential scan (an equity curve spends most of its bars
    below its peak). When most blocks hold one, the plain scan is cheaper and is used instead.
    """
    n = values.shape[0]
    full = n // _PEAK_BLOCK * _PEAK_BLOCK
    block_max = values[:full].reshape(-1, _PEAK_BLOCK).max(axis=1) if full else np.empty(0)
    carried = np.empty(block_max.shape[0] + 1)  # the peak before each block, and after the last
    carried[0] = start
    np.maximum.accumulate(block_max, out=carried[1:])
    np.maximum(carried[1:], start, out=carried[1:])
    new_high = np.flatnonzero(block_max > carried[:-1])
    if new_high.shape[0] * 2 > block_max.shape[0]:
        peak = np.maximum.accumulate(values)
        np.maximum(peak, start, out=peak)
        return peak
    peak = np.empty(n)
    blocks = peak[:full].reshape(-1, _PEAK_BLOCK)
    blocks[:] = carried[:-1, None]
    for k in new_high.tolist():
        np.maximum.accumulate(values[k * _PEAK_BLOCK : (k + 1) * _PEAK_BLOCK], out=blocks[k])
        np.maximum(blocks[k], carried[k], out=blocks[k])
    if full < n:
        tail = peak[full:]
        np.maximum.accumulate(values[full:], out=tail)
        np.maximum(tail, carried[-1], out=tail)
    return peak


def _is_constant(centered: np.ndarray, values: np.ndarray) -> bool:
    """True when `values` (with `centered` = values − mean) do not vary beyond float noise."""
    spread = float(np.abs(centered).max()) if centered.shape[0] else 0.0
    scale = float(np.abs(values).max()) if values.shape[0] else 0.0
    return spread <= _ZERO_DISPERSION * scale


class _Basis:
    """Everything several metrics share, each computed at most once per `compute_metrics` call."""

    def __init__(self, inputs: MetricInputs) -> None:
        self.times = np.asarray(inputs.times).astype("datetime64[ns]", copy=False)
        self.equity = np.asarray(inputs.equity, dtype=np.float64)
        self.close = np.asarray(inputs.close, dtype=np.float64)
        self.position = np.asarray(inputs.position, dtype=np.float64)
        self.c0 = float(inputs.initial_capital)
        self.n_per_year = int(inputs.periods_per_year)
        self.trades = inputs.trades
        self.total_commission = float(inputs.total_commission)
        self.bars = self.equity.shape[0]
        self.final = float(self.equity[-1]) if self.bars else self.c0
        self._validate()

    def _validate(self) -> None:
        n = self.bars
        for name in ("times", "close", "position"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}; equity has {n} bars")
        if not (math.isfinite(self.c0) and self.c0 > 0):
            raise ValueError(f"initial_capital must be a positive number; got {self.c0}")
        if self.n_per_year <= 0:
            raise ValueError(f"periods_per_year must be positive; got {self.n_per_year}")
        if n > 1 and bool((self.times.view(np.int64)[1:] < self.times.view(np.int64)[:-1]).any()):
            raise ValueError("times must be in ascending order")
        # A finite sum means every value is finite (NaN and ±inf propagate); only an overflowing sum needs
        # the per-bar check.
        if not math.isfinite(float(self.equity.sum())) and not bool(np.isfinite(self.equity).all()):
            raise ValueError("equity holds NaN or infinite values")
        t = self.trades
        if len(t) and (int(t.entry_bar.min()) < 0 or int(t.exit_bar.max()) >= n):
            raise ValueError(f"trade bars must lie in [0, {n}); got entry/exit bars outside that range")

    # -- daily returns --

    @cached_property
    def day_ends(self) -> np.ndarray:
        """Index of each UTC day's last bar."""
        return _day_ends(self.times)[1]

    @cached_property
    def _daily(self) -> tuple[np.ndarray, str | None]:
        last = self.equity[self.day_ends]
        if bool((last[:-1] <= 0).any()):
            return np.empty(0), "equity fell to zero or below, so later daily returns are undefined"
        return _chained_returns(last, self.c0), None

    def r(self, min_days: int = 2) -> np.ndarray:
        """The daily returns, or Undefined when there are fewer than `min_days` of them."""
        r, reason = self._daily
        if reason:
            raise Undefined(reason)
        if r.shape[0] < min_days:
            raise Undefined(f"needs at least {min_days} days of data; got {r.shape[0]}")
        return r

    @cached_property
    def r_centered(self) -> np.ndarray:
        r = self.r(2)
        return r - r.mean()

    def r_std(self) -> float:
        """std(r, ddof=1), Undefined when the daily returns are constant (zero volatility)."""
        r, centered = self.r(2), self.r_centered
        if _is_constant(centered, r):
            raise Undefined("zero volatility: the daily returns are constant")
        return float(np.sqrt(np.dot(centered, centered) / (r.shape[0] - 1)))

    @cached_property
    def r_quantiles(self) -> tuple[float, float]:
        q05, q95 = np.quantile(self.r(2), [0.05, 0.95])
        return float(q05), float(q95)

    @cached_property
    def benchmark_r(self) -> np.ndarray:
        """Daily returns of the close (the first day against the first bar's close), same days as r."""
        if not self.bars or not float(self.close.min()) > 0:
            raise Undefined("the close must be positive on every bar for buy-and-hold returns")
        return _chained_returns(self.close[self.day_ends], float(self.close[0]))

    def cagr(self) -> float:
        """CAGR as a fraction."""
        if not self.bars:
            raise Undefined("no bars")
        days = float(self.times[-1].astype(np.int64) - self.times[0].astype(np.int64)) / _NS_PER_DAY
        if days < 1.0:
            raise Undefined(f"the bars span {days:.3g} days; CAGR needs at least one day of calendar time")
        return _grow(self.final / self.c0, 365.25 / days)

    # -- drawdown --

    @cached_property
    def peak(self) -> np.ndarray:
        """Running maximum of the equity, starting at C0."""
        if not self.bars:
            return self.equity.copy()
        return running_max(self.equity, self.c0)

    @cached_property
    def dd_fraction(self) -> np.ndarray:
        dd = self.equity / self.peak
        dd -= 1.0
        return dd

    @cached_property
    def dd_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """(first bar, first bar after) of each maximal run of bars with E < peak (the peak stays the same
        within a run); the second is `bars` for a run that never recovered."""
        if not self.bars:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        below = self.equity < self.peak
        flips = np.flatnonzero(below[1:] != below[:-1]) + 1  # first bar of each run (after the first)
        if below[0]:
            flips = np.insert(flips, 0, 0)
        if below[-1]:
            flips = np.append(flips, self.bars)
        return flips[0::2], flips[1::2]

    @cached_property
    def dd_depths(self) -> np.ndarray:
        """The lowest drawdown fraction of each run (over a run and the bars at the peak after it, whose
        drawdown is 0)."""
        starts, _ = self.dd_runs
        return np.minimum.reduceat(self.dd_fraction, starts) if starts.shape[0] else np.empty(0)

    @cached_property
    def dd_periods(self) -> tuple[np.ndarray, np.ndarray]:
        """(depth as a fraction, duration in days) of each drawdown period: a maximal run of bars with
        E < peak, from the bar that set the peak (the first bar if the peak is C0 before any bar) to the
        first bar back at the peak (the last bar if never recovered)."""
        starts, ends = self.dd_runs
        if not starts.shape[0]:
            return np.empty(0), np.empty(0)
        t = self.times.view(np.int64)
        peak_bar = np.maximum(starts - 1, 0)
        end_bar = np.minimum(ends, self.bars - 1)
        return self.dd_depths, (t[end_bar] - t[peak_bar]) / _NS_PER_DAY

    def max_dd_fraction(self) -> float:
        """min(drawdown) over every bar: the deepest run's depth (0 without any)."""
        depths = self.dd_depths
        return float(depths.min()) if depths.shape[0] else 0.0

    @cached_property
    def max_dd_money(self) -> float:
        """min(E − peak) over every bar, from each run's lowest equity and its (constant) peak: rounding is
        monotonic, so min(E) − peak is exactly min(E − peak)."""
        starts, _ = self.dd_runs
        if not starts.shape[0]:
            return 0.0
        return float((np.minimum.reduceat(self.equity, starts) - self.peak[starts]).min())

    # -- trades --

    @cached_property
    def pnl(self) -> np.ndarray:
        return np.asarray(self.trades.pnl, dtype=np.float64)

    @cached_property
    def wins(self) -> np.ndarray:
        return self.pnl[self.pnl > 0]

    @cached_property
    def losses(self) -> np.ndarray:
        return self.pnl[self.pnl < 0]

    def need_trades(self) -> int:
        n = self.pnl.shape[0]
        if not n:
            raise Undefined("no trades")
        return n

    def avg_win(self) -> float:
        self.need_trades()
        if not self.wins.shape[0]:
            raise Undefined("no winning trades")
        return float(self.wins.mean())

    def avg_loss(self) -> float:
        self.need_trades()
        if not self.losses.shape[0]:
            raise Undefined("no losing trades")
        return float(self.losses.mean())

    @cached_property
    def durations_days(self) -> np.ndarray:
        self.need_trades()
        t = self.times.view(np.int64)
        return (t[self.trades.exit_bar] - t[self.trades.entry_bar]) / _NS_PER_DAY


def _grow(ratio: float, power: float) -> float:
    """ratio^power − 1 (−1 when ratio ≤ 0: everything was lost), Undefined on overflow."""
    if ratio <= 0:
        return -1.0
    try:
        return float(ratio**power) - 1.0
    except OverflowError:
        raise Undefined("too large to represent: the growth is annualized from a very short span") from None


# ---- the metrics ----------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[_Basis], float | int]] = {}


def metric(key: str) -> Callable[[Callable[[_Basis], float | int]], Callable[[_Basis], float | int]]:
    """Register the function computing the declared metric `key`."""
    if key not in METRIC_KEYS:
        raise RuntimeError(f"metric {key!r} is not declared in metric_definitions.METRIC_DEFINITIONS")
    if key in _REGISTRY:
        raise RuntimeError(f"metric {key!r} has two functions")

    def register(fn: Callable[[_Basis], float | int]) -> Callable[[_Basis], float | int]:
        _REGISTRY[key] = fn
        return fn

    return register


# -- returns --


@metric("final_capital")
def _final_capital(b: _Basis) -> float:
    return b.final


@metric("equity_peak")
def _equity_peak(b: _Basis) -> float:
    return float(b.peak[-1]) if b.bars else b.c0


@metric("net_profit")
def _net_profit(b: _Basis) -> float:
    return b.final - b.c0


@metric("total_return_percent")
def _total_return_percent(b: _Basis) -> float:
    return (b.final / b.c0 - 1.0) * 100.0


@metric("annualized_return_percent")
def _annualized_return_percent(b: _Basis) -> float:
    days = b.r(2).shape[0]
    return _grow(b.final / b.c0, b.n_per_year / days) * 100.0


@metric("cagr_percent")
def _cagr_percent(b: _Basis) -> float:
    return b.cagr() * 100.0


@metric("best_day_percent")
def _best_day_percent(b: _Basis) -> float:
    return float(b.r(1).max()) * 100.0


@metric("worst_day_percent")
def _worst_day_percent(b: _Basis) -> float:
    return float(b.r(1).min()) * 100.0


@metric("trading_days")
def _trading_days(b: _Basis) -> int:
    return int(b.day_ends.shape[0])


# -- risk --


@metric("volatility_percent")
def _volatility_percent(b: _Basis) -> float:
    return b.r_std() * math.sqrt(b.n_per_year) * 100.0


@metric("var_95_percent")
def _var_95_percent(b: _Basis) -> float:
    return b.r_quantiles[0] * 100.0


@metric("cvar_95_percent")
def _cvar_95_percent(b: _Basis) -> float:
    r = b.r(2)
    cutoff = max(b.r_quantiles[0], float(r.min()))  # guards against the quantile rounding below min(r)
    return float(r[r <= cutoff].mean()) * 100.0


@metric("skew")
def _skew(b: _Basis) -> float:
    r = b.r(3)
    c = b.r_centered
    if _is_constant(c, r):
        raise Undefined("the daily returns are constant")
    d = r.shape[0]
    s2, s3 = float(np.dot(c, c)), float(np.dot(c * c, c))
    return d * math.sqrt(d - 1) / (d - 2) * s3 / s2**1.5


@metric("kurtosis")
def _kurtosis(b: _Basis) -> float:
    r = b.r(4)
    c = b.r_centered
    if _is_constant(c, r):
        raise Undefined("the daily returns are constant")
    d = r.shape[0]
    c2 = c * c
    s2, s4 = float(c2.sum()), float(np.dot(c2, c2))
    return d * (d + 1) * (d - 1) * s4 / ((d - 2) * (d - 3) * s2**2) - 3.0 * (d - 1) ** 2 / ((d - 2) * (d - 3))


@metric("ulcer_index")
def _ulcer_index(b: _Basis) -> float:
    if not b.bars:
        raise Undefined("no bars")
    # 100 · √(mean of squared drawdown fractions): a sum of products without a temporary array, and not
    # through BLAS (whose threads only add latency on one long vector).
    dd = b.dd_fraction
    return 100.0 * math.sqrt(float(np.einsum("i,i->", dd, dd)) / b.bars)


# -- drawdown --


@metric("max_drawdown")
def _max_drawdown(b: _Basis) -> float:
    return b.max_dd_money


@metric("max_drawdown_percent")
def _max_drawdown_percent(b: _Basis) -> float:
    return b.max_dd_fraction() * 100.0


@metric("avg_drawdown_percent")
def _avg_drawdown_percent(b: _Basis) -> float:
    depth, _ = b.dd_periods
    return float(depth.mean()) * 100.0 if depth.shape[0] else 0.0


@metric("max_drawdown_duration_days")
def _max_drawdown_duration_days(b: _Basis) -> float:
    _, days = b.dd_periods
    return float(days.max()) if days.shape[0] else 0.0


@metric("avg_drawdown_duration_days")
def _avg_drawdown_duration_days(b: _Basis) -> float:
    _, days = b.dd_periods
    return float(days.mean()) if days.shape[0] else 0.0


# -- risk-adjusted --


@metric("sharpe_ratio")
def _sharpe_ratio(b: _Basis) -> float:
    std = b.r_std()
    return float(b.r(2).mean()) / std * math.sqrt(b.n_per_year)


@metric("sortino_ratio")
def _sortino_ratio(b: _Basis) -> float:
    r = b.r(2)
    downside = np.minimum(r, 0.0)
    mean_sq = float(np.dot(downside, downside)) / r.shape[0]
    if mean_sq == 0.0:
        raise Undefined("no losing day: the downside deviation is zero")
    n = b.n_per_year
    return float(r.mean()) * n / (math.sqrt(mean_sq) * math.sqrt(n))


@metric("calmar_ratio")
def _calmar_ratio(b: _Basis) -> float:
    max_dd = b.max_dd_fraction()
    if max_dd == 0.0:
        raise Undefined("no drawdown")
    return b.cagr() / abs(max_dd)


@metric("omega_ratio")
def _omega_ratio(b: _Basis) -> float:
    r = b.r(2)
    losses = float(-r[r < 0].sum())
    if losses == 0.0:
        raise Undefined("no losing day")
    return float(r[r > 0].sum()) / losses


@metric("tail_ratio")
def _tail_ratio(b: _Basis) -> float:
    q05, q95 = b.r_quantiles
    if q05 == 0.0:
        raise Undefined("the 5th percentile of daily returns is 0")
    return abs(q95) / abs(q05)


@metric("recovery_factor")
def _recovery_factor(b: _Basis) -> float:
    max_dd = b.max_dd_money
    if max_dd == 0.0:
        raise Undefined("no drawdown")
    return (b.final - b.c0) / abs(max_dd)


# -- benchmark --


@metric("buy_and_hold_return_percent")
def _buy_and_hold_return_percent(b: _Basis) -> float:
    if not b.bars or not float(b.close[0]) > 0:
        raise Undefined("needs a positive first close")
    return (float(b.close[-1]) / float(b.close[0]) - 1.0) * 100.0


def _beta(b: _Basis) -> float:
    b.r(2)  # Undefined with fewer than 2 days
    bench = b.benchmark_r
    bc = bench - bench.mean()
    if _is_constant(bc, bench):
        raise Undefined("buy-and-hold's daily returns are constant (zero variance)")
    return float(np.dot(b.r_centered, bc)) / float(np.dot(bc, bc))  # the (D − 1) factors cancel


@metric("alpha_percent")
def _alpha_percent(b: _Basis) -> float:
    beta = _beta(b)
    return (float(b.r(2).mean()) - beta * float(b.benchmark_r.mean())) * b.n_per_year * 100.0


@metric("beta")
def _beta_metric(b: _Basis) -> float:
    return _beta(b)


# -- trades --


@metric("total_trades")
def _total_trades(b: _Basis) -> int:
    return int(b.pnl.shape[0])


@metric("winning_trades")
def _winning_trades(b: _Basis) -> int:
    return int(b.wins.shape[0])


@metric("losing_trades")
def _losing_trades(b: _Basis) -> int:
    return int(b.losses.shape[0])


@metric("long_trades")
def _long_trades(b: _Basis) -> int:
    return int(np.count_nonzero(b.trades.side > 0))


@metric("short_trades")
def _short_trades(b: _Basis) -> int:
    return int(np.count_nonzero(b.trades.side < 0))


@metric("win_rate")
def _win_rate(b: _Basis) -> float:
    return b.wins.shape[0] / b.need_trades() * 100.0


@metric("profit_factor")
def _profit_factor(b: _Basis) -> float:
    b.need_trades()
    if not b.losses.shape[0]:
        raise Undefined("no losing trades: gross loss is zero")
    return float(b.wins.sum()) / float(-b.losses.sum())


@metric("gross_profit")
def _gross_profit(b: _Basis) -> float:
    return float(b.wins.sum())


@metric("gross_loss")
def _gross_loss(b: _Basis) -> float:
    return float(-b.losses.sum())


@metric("avg_trade_return_percent")
def _avg_trade_return_percent(b: _Basis) -> float:
    b.need_trades()
    return float(np.mean(b.trades.return_pct))


@metric("best_trade_percent")
def _best_trade_percent(b: _Basis) -> float:
    b.need_trades()
    return float(np.max(b.trades.return_pct))


@metric("worst_trade_percent")
def _worst_trade_percent(b: _Basis) -> float:
    b.need_trades()
    return float(np.min(b.trades.return_pct))


@metric("expectancy")
def _expectancy(b: _Basis) -> float:
    b.need_trades()
    return float(b.pnl.mean())


@metric("expectancy_percent")
def _expectancy_percent(b: _Basis) -> float:
    b.need_trades()
    notional = float(np.dot(b.trades.size, b.trades.entry_price))
    if not notional > 0:
        raise Undefined("the trades' entry notional is zero")
    return float(b.pnl.sum()) / notional * 100.0


@metric("avg_win")
def _avg_win(b: _Basis) -> float:
    return b.avg_win()


@metric("avg_loss")
def _avg_loss(b: _Basis) -> float:
    return b.avg_loss()


@metric("largest_win")
def _largest_win(b: _Basis) -> float:
    b.need_trades()
    if not b.wins.shape[0]:
        raise Undefined("no winning trades")
    return float(b.wins.max())


@metric("largest_loss")
def _largest_loss(b: _Basis) -> float:
    b.need_trades()
    if not b.losses.shape[0]:
        raise Undefined("no losing trades")
    return float(b.losses.min())


@metric("payoff_ratio")
def _payoff_ratio(b: _Basis) -> float:
    return b.avg_win() / abs(b.avg_loss())


@metric("sqn")
def _sqn(b: _Basis) -> float:
    n = b.need_trades()
    if n < 2:
        raise Undefined("needs at least 2 trades")
    if _is_constant(b.pnl - b.pnl.mean(), b.pnl):
        raise Undefined("every trade has the same pnl (zero standard deviation)")
    return math.sqrt(n) * float(b.pnl.mean()) / float(np.std(b.pnl, ddof=1))


@metric("kelly_criterion")
def _kelly_criterion(b: _Basis) -> float:
    n = b.need_trades()
    w = b.wins.shape[0] / n
    payoff = b.avg_win() / abs(b.avg_loss())
    return w - (1.0 - w) / payoff


@metric("max_consecutive_wins")
def _max_consecutive_wins(b: _Basis) -> int:
    return _longest_run(b.pnl > 0)


@metric("max_consecutive_losses")
def _max_consecutive_losses(b: _Basis) -> int:
    return _longest_run(b.pnl < 0)


@metric("avg_trade_duration_bars")
def _avg_trade_duration_bars(b: _Basis) -> float:
    b.need_trades()
    return float(np.mean(b.trades.exit_bar - b.trades.entry_bar))


@metric("avg_trade_duration_days")
def _avg_trade_duration_days(b: _Basis) -> float:
    return float(b.durations_days.mean())


@metric("max_trade_duration_days")
def _max_trade_duration_days(b: _Basis) -> float:
    return float(b.durations_days.max())


@metric("min_trade_duration_days")
def _min_trade_duration_days(b: _Basis) -> float:
    return float(b.durations_days.min())


# -- activity --


@metric("exposure_time_percent")
def _exposure_time_percent(b: _Basis) -> float:
    if not b.bars:
        raise Undefined("no bars")
    return np.count_nonzero(b.position != 0.0) / b.bars * 100.0  # (faster than counting floats directly)


@metric("commissions_paid")
def _commissions_paid(b: _Basis) -> float:
    return b.total_commission


_missing = [key for key in METRIC_KEYS if key not in _REGISTRY]
if _missing:  # pragma: no cover - a declaration without a function, caught at import
    raise RuntimeError(f"declared metrics without a function: {', '.join(_missing)}")


# ---- the entry point ------------------------------------------------------------------------------


def _json_number(value: float | int) -> float | int:
    """A plain int, or a finite float rounded to 12 significant digits (−0.0 becomes 0.0)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a metric returned a bool")
    if isinstance(value, (int, np.integer)):
        return int(value)
    x = float(value)
    if not math.isfinite(x):
        raise Undefined("not a finite number")
    return float(f"{x:.{_SIGNIFICANT_DIGITS}g}") + 0.0


def compute_metrics(inputs: MetricInputs) -> tuple[dict[str, MetricResult], dict[str, str]]:
    """Every declared metric, in declaration order, as JSON-ready numbers; and the notes: for each
    metric that is None, why (no trades, zero volatility, fewer than two days, ...)."""
    basis = _Basis(inputs)
    values: dict[str, MetricResult] = {}
    notes: dict[str, str] = {}
    for definition in METRIC_DEFINITIONS:
        try:
            values[definition.key] = _json_number(_REGISTRY[definition.key](basis))
        except Undefined as undefined:
            values[definition.key] = None
            notes[definition.key] = undefined.reason
    return values, notes
