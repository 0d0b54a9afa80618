"""Every performance metric, declared once: key, name, description, formula, unit, direction, category.

This table is the contract: `metrics.compute_metrics` computes exactly these keys in this order, and the
API's `/performance-metrics/definitions` serves `metric_definitions()`. It imports nothing heavy (no
numpy, no pandas), so the API functions can serve it without paying for those imports at cold start.

Notation used in the formulas:

- C0 = initial capital; E = equity marked at each bar's close; E[last] = the last bar's equity.
- peak = running maximum of E over the bars so far, starting from C0: peak[t] = max(C0, E[0..t]).
- r = daily returns of the equity curve: the last E of each UTC calendar day against the previous day's
  last E, the first day against C0. D = number of daily returns (UTC days that have bars).
- b = daily returns of the instrument's close, built the same way, the first day against the first
  bar's close (buy-and-hold bought at the first close).
- N = periods per year used to annualize (252 for equities, 365 for crypto); risk-free rate 0.
- std(x, ddof=1) = sample standard deviation; quantile(x, q) = numpy's linear interpolation.
- For trades: pnl = money, net of the trade's commissions; ret = return_pct (percent of size × entry
  price); a win is pnl > 0, a loss pnl < 0 (a trade with pnl = 0 is neither).

A value that is undefined (no trades, zero volatility, fewer than two days, ...) is null, and the result's
`metric_notes` says why; no metric is ever NaN or infinite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Category = Literal["returns", "risk", "drawdown", "risk_adjusted", "benchmark", "trades", "activity"]
Unit = Literal["money", "percent", "ratio", "fraction", "count", "days", "bars"]


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """One metric. `higher_is_better` is None where neither direction is better (counts, beta, ...)."""

    key: str
    name: str
    description: str
    formula: str
    unit: Unit
    higher_is_better: bool | None
    category: Category

    def to_dict(self) -> dict[str, str | bool | None]:
        return asdict(self)


_D = MetricDefinition

METRIC_DEFINITIONS: tuple[MetricDefinition, ...] = (
    # ---- returns ------------------------------------------------------------------------------
    _D(
        "final_capital",
        "Final Capital",
        "Equity at the last bar's close (every position closed).",
        "E[last]",
        "money",
        True,
        "returns",
    ),
    _D(
        "equity_peak",
        "Equity Peak",
        "Highest equity reached at any bar's close (the initial capital if never exceeded).",
        "max(C0, max over bars of E)",
        "money",
        True,
        "returns",
    ),
    _D(
        "net_profit",
        "Net Profit",
        "Money gained or lost over the backtest, after every cost.",
        "E[last] − C0",
        "money",
        True,
        "returns",
    ),
    _D(
        "total_return_percent",
        "Total Return",
        "Return over the whole backtest.",
        "(E[last] / C0 − 1) · 100",
        "percent",
        True,
        "returns",
    ),
    _D(
        "annualized_return_percent",
        "Annualized Return",
        "Geometric mean daily return compounded over a year of N trading days. Null with fewer than 2 days "
        "or when too large to represent; −100 when the final equity is zero or below.",
        "((E[last] / C0)^(N / D) − 1) · 100   (= (∏(1 + r))^(N / D) − 1, in percent)",
        "percent",
        True,
        "returns",
    ),
    _D(
        "cagr_percent",
        "CAGR",
        "Compound annual growth rate over calendar time. Null when the bars span less than one day or "
        "when too large to represent; −100 when the final equity is zero or below.",
        "((E[last] / C0)^(365.25 / days) − 1) · 100, days = (last bar time − first bar time) in days",
        "percent",
        True,
        "returns",
    ),
    _D(
        "best_day_percent",
        "Best Day",
        "Largest daily return of the equity curve.",
        "max(r) · 100",
        "percent",
        True,
        "returns",
    ),
    _D(
        "worst_day_percent",
        "Worst Day",
        "Smallest daily return of the equity curve.",
        "min(r) · 100",
        "percent",
        True,
        "returns",
    ),
    _D(
        "trading_days",
        "Trading Days",
        "Number of UTC calendar days with at least one bar (the number of daily returns).",
        "D",
        "count",
        None,
        "returns",
    ),
    # ---- risk ---------------------------------------------------------------------------------
    _D(
        "volatility_percent",
        "Volatility (Ann.)",
        "Annualized standard deviation of daily returns. Null with fewer than 2 days.",
        "std(r, ddof=1) · √N · 100",
        "percent",
        False,
        "risk",
    ),
    _D(
        "var_95_percent",
        "VaR 95% (daily)",
        "Historical 1-day value at risk: the daily return not undercut on 95% of days (negative = a loss). "
        "Null with fewer than 2 days.",
        "quantile(r, 0.05) · 100",
        "percent",
        True,
        "risk",
    ),
    _D(
        "cvar_95_percent",
        "CVaR 95% (daily)",
        "Historical 1-day conditional value at risk: the mean of the daily returns at or below the VaR. "
        "Null with fewer than 2 days.",
        "mean(r[r ≤ quantile(r, 0.05)]) · 100",
        "percent",
        True,
        "risk",
    ),
    _D(
        "skew",
        "Skew",
        "Sample skewness of daily returns, bias-corrected (as pandas' Series.skew). Null with fewer than "
        "3 days or constant returns.",
        "D·√(D − 1) / (D − 2) · S3 / S2^(3/2), Sk = Σ (r − mean(r))^k",
        "ratio",
        True,
        "risk",
    ),
    _D(
        "kurtosis",
        "Kurtosis",
        "Sample excess kurtosis of daily returns, bias-corrected (as pandas' Series.kurt; 0 for a normal "
        "distribution). Null with fewer than 4 days or constant returns.",
        "D(D + 1)(D − 1)·S4 / ((D − 2)(D − 3)·S2²) − 3(D − 1)² / ((D − 2)(D − 3)), Sk = Σ (r − mean(r))^k",
        "ratio",
        None,
        "risk",
    ),
    _D(
        "ulcer_index",
        "Ulcer Index",
        "Root mean square of the percent drawdown over every bar: depth and length of drawdowns together.",
        "√(mean over bars of DD²), DD = (E / peak − 1) · 100",
        "percent",
        False,
        "risk",
    ),
    # ---- drawdown -----------------------------------------------------------------------------
    _D(
        "max_drawdown",
        "Max Drawdown",
        "Largest fall of equity below its running peak, in money, measured on every bar (negative).",
        "min over bars of (E − peak)",
        "money",
        True,
        "drawdown",
    ),
    _D(
        "max_drawdown_percent",
        "Max Drawdown %",
        "Largest fall of equity below its running peak, in percent, measured on every bar (negative).",
        "min over bars of (E / peak − 1) · 100",
        "percent",
        True,
        "drawdown",
    ),
    _D(
        "avg_drawdown_percent",
        "Avg. Drawdown %",
        "Mean depth of the drawdown periods (negative). A drawdown period is a maximal run of bars with "
        "E < peak; 0 when equity never fell below its peak.",
        "mean over drawdown periods of (min over the period of (E / peak − 1)) · 100",
        "percent",
        True,
        "drawdown",
    ),
    _D(
        "max_drawdown_duration_days",
        "Max Drawdown Duration",
        "Longest drawdown period in calendar days, from the bar that set the peak to the first bar back at "
        "or above it (or the last bar if equity never recovered); 0 when there is no drawdown.",
        "max over drawdown periods of (time[recovery bar, else last bar] − time[peak bar]) / 1 day",
        "days",
        False,
        "drawdown",
    ),
    _D(
        "avg_drawdown_duration_days",
        "Avg. Drawdown Duration",
        "Mean length of the drawdown periods in calendar days, measured as for the maximum; 0 when there "
        "is no drawdown.",
        "mean over drawdown periods of (time[recovery bar, else last bar] − time[peak bar]) / 1 day",
        "days",
        False,
        "drawdown",
    ),
    # ---- risk-adjusted ------------------------------------------------------------------------
    _D(
        "sharpe_ratio",
        "Sharpe Ratio",
        "Annualized mean daily return per unit of daily volatility, risk-free rate 0. Null with fewer "
        "than 2 days or zero volatility.",
        "mean(r) / std(r, ddof=1) · √N",
        "ratio",
        True,
        "risk_adjusted",
    ),
    _D(
        "sortino_ratio",
        "Sortino Ratio",
        "Annualized mean daily return per unit of annualized downside deviation (target 0, averaged over "
        "all days). Null with fewer than 2 days or no losing day.",
        "mean(r) · N / (√(mean over all days of min(r, 0)²) · √N)",
        "ratio",
        True,
        "risk_adjusted",
    ),
    _D(
        "calmar_ratio",
        "Calmar Ratio",
        "CAGR per unit of maximum drawdown, both as fractions. Null when CAGR is null or there is no drawdown.",
        "(cagr_percent / 100) / |max_drawdown_percent / 100|",
        "ratio",
        True,
        "risk_adjusted",
    ),
    _D(
        "omega_ratio",
        "Omega Ratio",
        "Sum of daily gains over sum of daily losses (threshold 0). Null with fewer than 2 days or no losing day.",
        "Σ max(r, 0) / Σ max(−r, 0)",
        "ratio",
        True,
        "risk_adjusted",
    ),
    _D(
        "tail_ratio",
        "Tail Ratio",
        "Size of the right tail of daily returns against the left tail. Null with fewer than 2 days or "
        "when the 5th percentile is 0.",
        "|quantile(r, 0.95)| / |quantile(r, 0.05)|",
        "ratio",
        True,
        "risk_adjusted",
    ),
    _D(
        "recovery_factor",
        "Recovery Factor",
        "Net profit per unit of the largest drawdown in money. Null when there is no drawdown.",
        "net_profit / |max_drawdown|",
        "ratio",
        True,
        "risk_adjusted",
    ),
    # ---- benchmark ----------------------------------------------------------------------------
    _D(
        "buy_and_hold_return_percent",
        "Buy & Hold Return",
        "Return of holding the instrument from the first bar's close to the last bar's close, no costs.",
        "(close[last] / close[first] − 1) · 100",
        "percent",
        None,
        "benchmark",
    ),
    _D(
        "alpha_percent",
        "Alpha (Ann.)",
        "Annualized excess daily return over what beta to buy-and-hold explains, risk-free rate 0. Null "
        "when beta is null.",
        "(mean(r) − beta · mean(b)) · N · 100",
        "percent",
        True,
        "benchmark",
    ),
    _D(
        "beta",
        "Beta",
        "Sensitivity of the strategy's daily returns to buy-and-hold's daily returns. Null with fewer than "
        "2 days or a constant close.",
        "cov(r, b, ddof=1) / var(b, ddof=1)",
        "ratio",
        None,
        "benchmark",
    ),
    # ---- trades -------------------------------------------------------------------------------
    _D(
        "total_trades",
        "Total Trades",
        "Closed trades, including a position closed at the end of the data.",
        "n = number of trades",
        "count",
        None,
        "trades",
    ),
    _D(
        "winning_trades",
        "Winning Trades",
        "Trades with a positive pnl (net of commissions).",
        "count(pnl > 0)",
        "count",
        None,
        "trades",
    ),
    _D(
        "losing_trades",
        "Losing Trades",
        "Trades with a negative pnl (net of commissions).",
        "count(pnl < 0)",
        "count",
        None,
        "trades",
    ),
    _D(
        "long_trades",
        "Long Trades",
        "Trades that bought first.",
        "count(side = long)",
        "count",
        None,
        "trades",
    ),
    _D(
        "short_trades",
        "Short Trades",
        "Trades that sold first.",
        "count(side = short)",
        "count",
        None,
        "trades",
    ),
    _D(
        "win_rate",
        "Win Rate",
        "Share of trades that made money. Null without trades.",
        "count(pnl > 0) / n · 100",
        "percent",
        True,
        "trades",
    ),
    _D(
        "profit_factor",
        "Profit Factor",
        "Gross profit over gross loss in money, net of commissions. Null without losing trades.",
        "gross_profit / gross_loss",
        "ratio",
        True,
        "trades",
    ),
    _D(
        "gross_profit",
        "Gross Profit",
        "Sum of the pnl of the winning trades.",
        "Σ pnl over trades with pnl > 0",
        "money",
        True,
        "trades",
    ),
    _D(
        "gross_loss",
        "Gross Loss",
        "Sum of the losses of the losing trades, as a positive amount.",
        "−Σ pnl over trades with pnl < 0",
        "money",
        False,
        "trades",
    ),
    _D(
        "avg_trade_return_percent",
        "Avg. Trade Return",
        "Arithmetic mean of the trades' returns. Null without trades.",
        "mean(ret)",
        "percent",
        True,
        "trades",
    ),
    _D(
        "best_trade_percent",
        "Best Trade",
        "Highest trade return. Null without trades.",
        "max(ret)",
        "percent",
        True,
        "trades",
    ),
    _D(
        "worst_trade_percent",
        "Worst Trade",
        "Lowest trade return. Null without trades.",
        "min(ret)",
        "percent",
        True,
        "trades",
    ),
    _D(
        "expectancy",
        "Expectancy",
        "Average money made per trade, net of commissions. Null without trades.",
        "mean(pnl)",
        "money",
        True,
        "trades",
    ),
    _D(
        "expectancy_percent",
        "Expectancy %",
        "Money made per money put into trades: total pnl over the total entry notional (a money-weighted "
        "average trade return). Null without trades.",
        "Σ pnl / Σ (size · entry_price) · 100",
        "percent",
        True,
        "trades",
    ),
    _D(
        "avg_win",
        "Avg. Win",
        "Mean pnl of the winning trades. Null without winning trades.",
        "mean(pnl over trades with pnl > 0)",
        "money",
        True,
        "trades",
    ),
    _D(
        "avg_loss",
        "Avg. Loss",
        "Mean pnl of the losing trades (negative). Null without losing trades.",
        "mean(pnl over trades with pnl < 0)",
        "money",
        True,
        "trades",
    ),
    _D(
        "largest_win",
        "Largest Win",
        "Highest pnl of a winning trade. Null without winning trades.",
        "max(pnl over trades with pnl > 0)",
        "money",
        True,
        "trades",
    ),
    _D(
        "largest_loss",
        "Largest Loss",
        "Lowest pnl of a losing trade (negative). Null without losing trades.",
        "min(pnl over trades with pnl < 0)",
        "money",
        True,
        "trades",
    ),
    _D(
        "payoff_ratio",
        "Payoff Ratio",
        "Average win over the size of the average loss. Null without winning or without losing trades.",
        "avg_win / |avg_loss|",
        "ratio",
        True,
        "trades",
    ),
    _D(
        "sqn",
        "SQN",
        "Van Tharp's System Quality Number on trade pnl. Null with fewer than 2 trades or equal pnl.",
        "√n · mean(pnl) / std(pnl, ddof=1)",
        "ratio",
        True,
        "trades",
    ),
    _D(
        "kelly_criterion",
        "Kelly Criterion",
        "Fraction of capital the Kelly formula would stake per trade. Null without winning or without losing trades.",
        "W − (1 − W) / R, W = win_rate / 100, R = avg_win / |avg_loss|",
        "fraction",
        True,
        "trades",
    ),
    _D(
        "max_consecutive_wins",
        "Max Consecutive Wins",
        "Longest run of winning trades in exit order (a trade with pnl = 0 breaks the run).",
        "longest run of consecutive trades with pnl > 0",
        "count",
        True,
        "trades",
    ),
    _D(
        "max_consecutive_losses",
        "Max Consecutive Losses",
        "Longest run of losing trades in exit order (a trade with pnl = 0 breaks the run).",
        "longest run of consecutive trades with pnl < 0",
        "count",
        False,
        "trades",
    ),
    _D(
        "avg_trade_duration_bars",
        "Avg. Trade Duration (bars)",
        "Mean number of bars from a trade's entry fill to its exit fill. Null without trades.",
        "mean(exit_bar − entry_bar)",
        "bars",
        None,
        "trades",
    ),
    _D(
        "avg_trade_duration_days",
        "Avg. Trade Duration",
        "Mean calendar time from the entry fill's bar to the exit fill's bar. Null without trades.",
        "mean(time[exit_bar] − time[entry_bar]) / 1 day",
        "days",
        None,
        "trades",
    ),
    _D(
        "max_trade_duration_days",
        "Max Trade Duration",
        "Longest calendar time from the entry fill's bar to the exit fill's bar. Null without trades.",
        "max(time[exit_bar] − time[entry_bar]) / 1 day",
        "days",
        None,
        "trades",
    ),
    _D(
        "min_trade_duration_days",
        "Min Trade Duration",
        "Shortest calendar time from the entry fill's bar to the exit fill's bar. Null without trades.",
        "min(time[exit_bar] − time[entry_bar]) / 1 day",
        "days",
        None,
        "trades",
    ),
    # ---- activity -----------------------------------------------------------------------------
    _D(
        "exposure_time_percent",
        "Exposure Time",
        "Share of bars that end with a position open.",
        "count(position ≠ 0 at the bar's close) / number of bars · 100",
        "percent",
        None,
        "activity",
    ),
    _D(
        "commissions_paid",
        "Commissions Paid",
        "Total commission charged on every fill.",
        "Σ commission over all fills",
        "money",
        False,
        "activity",
    ),
)

METRIC_KEYS: tuple[str, ...] = tuple(d.key for d in METRIC_DEFINITIONS)

# The headline metrics, in the order a person reads them (the CLI's summary, the report's cards, the
# comparison's first rows).
HEADLINE_METRICS: tuple[str, ...] = (
    "total_return_percent",
    "cagr_percent",
    "annualized_return_percent",
    "volatility_percent",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown_percent",
    "win_rate",
    "profit_factor",
    "total_trades",
    "exposure_time_percent",
    "buy_and_hold_return_percent",
    "final_capital",
)

if len(set(METRIC_KEYS)) != len(METRIC_KEYS):  # pragma: no cover - a declaration error, caught at import
    raise RuntimeError("a metric key is declared twice in METRIC_DEFINITIONS")
if not set(HEADLINE_METRICS) <= set(METRIC_KEYS):  # pragma: no cover - a declaration error, caught at import
    raise RuntimeError("a headline metric is not declared in METRIC_DEFINITIONS")


def metric_definitions() -> list[dict[str, str | bool | None]]:
    """Every metric's definition as JSON-ready dicts, in declaration (and result) order."""
    return [d.to_dict() for d in METRIC_DEFINITIONS]
