"""Performance metrics: the declaration, hand-checked golden values, pandas references, edge cases."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backtest_engine import metrics as metrics_module
from backtest_engine.metric_definitions import METRIC_DEFINITIONS, METRIC_KEYS, metric_definitions
from backtest_engine.metrics import (
    MetricInputs,
    TradeRecords,
    compute_metrics,
    daily_returns,
    drawdown_percent,
)

REL = 1e-9  # outputs are rounded to 12 significant digits, well inside this

SEED_KEYS = {
    "total_return_percent",
    "annualized_return_percent",
    "cagr_percent",
    "volatility_percent",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "max_drawdown_percent",
    "win_rate",
    "profit_factor",
    "total_trades",
    "final_capital",
    "avg_trade_return_percent",
    "best_trade_percent",
    "worst_trade_percent",
}


def _times(*stamps: str) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[ns]")


def _daily_times(n: int, start: str = "2024-01-01T20:00") -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "D")


def _trades(
    pnl: list[float],
    entry_bar: list[int] | None = None,
    exit_bar: list[int] | None = None,
    side: list[int] | None = None,
    size: list[float] | None = None,
    entry_price: list[float] | None = None,
    return_pct: list[float] | None = None,
) -> TradeRecords:
    n = len(pnl)
    entry = np.asarray(entry_bar if entry_bar is not None else [0] * n, dtype=np.int64)
    exit_ = np.asarray(exit_bar if exit_bar is not None else [1] * n, dtype=np.int64)
    sizes = np.asarray(size if size is not None else [1.0] * n, dtype=np.float64)
    prices = np.asarray(entry_price if entry_price is not None else [100.0] * n, dtype=np.float64)
    pnl_arr = np.asarray(pnl, dtype=np.float64)
    ret = np.asarray(return_pct, dtype=np.float64) if return_pct is not None else pnl_arr / (sizes * prices) * 100
    return TradeRecords(
        entry_bar=entry,
        exit_bar=exit_,
        side=np.asarray(side if side is not None else [1] * n, dtype=np.int8),
        size=sizes,
        entry_price=prices,
        exit_price=prices + pnl_arr / sizes,
        pnl=pnl_arr,
        return_pct=ret,
        commission=np.zeros(n),
        closed_by_end=np.zeros(n, dtype=bool),
    )


def _inputs(
    equity: list[float] | np.ndarray,
    *,
    times: np.ndarray | None = None,
    close: list[float] | np.ndarray | None = None,
    position: list[float] | np.ndarray | None = None,
    initial_capital: float = 100.0,
    periods_per_year: int = 252,
    trades: TradeRecords | None = None,
    total_commission: float = 0.0,
) -> MetricInputs:
    eq = np.asarray(equity, dtype=np.float64)
    n = eq.shape[0]
    return MetricInputs(
        times=times if times is not None else _daily_times(n),
        equity=eq,
        close=np.asarray(close, dtype=np.float64) if close is not None else np.linspace(50.0, 60.0, n),
        position=np.asarray(position, dtype=np.float64) if position is not None else np.zeros(n),
        initial_capital=initial_capital,
        periods_per_year=periods_per_year,
        trades=trades if trades is not None else TradeRecords.empty(),
        total_commission=total_commission,
    )


def _assert_json_ready(values: dict, notes: dict) -> None:
    """Every value a plain int, a finite plain float or None; a note for exactly the None values."""
    for key, value in values.items():
        assert value is None or type(value) in (int, float), (key, type(value))
        if isinstance(value, float):
            assert math.isfinite(value), (key, value)
    assert set(notes) == {k for k, v in values.items() if v is None}
    assert all(isinstance(reason, str) and reason for reason in notes.values())
    json.dumps(values, allow_nan=False)


# ---- the declaration ------------------------------------------------------------------------------


def test_at_least_40_metrics_each_declared_once_with_a_full_definition() -> None:
    assert len(METRIC_DEFINITIONS) >= 40
    assert len(set(METRIC_KEYS)) == len(METRIC_KEYS)
    assert set(METRIC_KEYS) >= SEED_KEYS
    for d in METRIC_DEFINITIONS:
        assert d.name.strip() and d.description.strip() and d.formula.strip() and d.unit.strip(), d.key
        assert d.higher_is_better in (True, False, None)
        assert d.category in {
            "returns",
            "risk",
            "drawdown",
            "risk_adjusted",
            "benchmark",
            "trades",
            "activity",
        }


def test_declared_keys_are_exactly_the_computed_keys_in_declaration_order() -> None:
    # Given any run, When the metrics are computed, Then the keys are the declaration's, in its order
    values, _ = compute_metrics(_inputs([100.0, 101.0, 99.0, 102.0]))
    assert list(values) == list(METRIC_KEYS)
    assert set(metrics_module._REGISTRY) == set(METRIC_KEYS)


def test_metric_definitions_are_json_dicts_in_declaration_order() -> None:
    defs = metric_definitions()
    assert [d["key"] for d in defs] == list(METRIC_KEYS)
    assert set(defs[0]) == {"key", "name", "description", "formula", "unit", "higher_is_better", "category"}
    json.dumps(defs)


def test_definitions_module_imports_neither_numpy_nor_pandas() -> None:
    code = (
        "import sys, backtest_engine.metric_definitions as m; "
        "assert len(m.metric_definitions()) >= 40; "
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- hand-checked golden values -------------------------------------------------------------------


def test_three_days_golden_values() -> None:
    # Given 100 → 110 → 99 → 108.9, one bar a day at 20:00 UTC, 252 periods per year
    inputs = _inputs([110.0, 99.0, 108.9], initial_capital=100.0)
    # When
    values, notes = compute_metrics(inputs)
    # Then daily returns are +10%, −10%, +10%
    labels, r = daily_returns(inputs.times, inputs.equity, 100.0)
    assert labels.tolist() == list(np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[D]"))
    assert r == pytest.approx([0.1, -0.1, 0.1], rel=1e-12)
    mean, std = 1 / 30, math.sqrt(1 / 75)  # deviations 1/15, −2/15, 1/15 → Σ² = 6/225, /(3 − 1)
    assert values["sharpe_ratio"] == pytest.approx(mean / std * math.sqrt(252), rel=REL)
    assert values["sortino_ratio"] == pytest.approx(mean * 252 / (math.sqrt(0.01 / 3) * math.sqrt(252)), rel=REL)
    assert values["volatility_percent"] == pytest.approx(std * math.sqrt(252) * 100, rel=REL)
    assert values["max_drawdown_percent"] == pytest.approx(-10.0, rel=REL)
    assert values["max_drawdown"] == pytest.approx(-11.0, rel=REL)
    assert values["total_return_percent"] == pytest.approx(8.9, rel=REL)
    assert values["net_profit"] == pytest.approx(8.9, rel=REL)
    assert values["final_capital"] == 108.9
    assert values["equity_peak"] == 110.0
    # CAGR over 2 calendar days (first bar to last bar), annualized return over 3 daily returns
    cagr = 1.089 ** (365.25 / 2) - 1
    assert values["cagr_percent"] == pytest.approx(cagr * 100, rel=REL)
    assert values["annualized_return_percent"] == pytest.approx((1.089 ** (252 / 3) - 1) * 100, rel=REL)
    assert values["calmar_ratio"] == pytest.approx(cagr / 0.10, rel=REL)
    assert values["best_day_percent"] == pytest.approx(10.0, rel=REL)
    assert values["worst_day_percent"] == pytest.approx(-10.0, rel=REL)
    assert values["omega_ratio"] == pytest.approx(2.0, rel=REL)
    assert values["trading_days"] == 3
    # quantile(r, 0.05) with 3 points: position 0.1 between −0.1 and 0.1 → −0.08; the tail holds −0.1 only
    assert values["var_95_percent"] == pytest.approx(-8.0, rel=REL)
    assert values["cvar_95_percent"] == pytest.approx(-10.0, rel=REL)
    assert values["tail_ratio"] == pytest.approx(0.1 / 0.08, rel=REL)
    assert values["recovery_factor"] == pytest.approx(8.9 / 11.0, rel=REL)
    assert values["max_drawdown_duration_days"] == 2.0  # peak on day 1, never recovered: to the last bar
    assert values["kurtosis"] is None and "4 days" in notes["kurtosis"]
    _assert_json_ready(values, notes)


def test_daily_returns_take_each_utc_days_last_bar_and_drawdown_every_bar() -> None:
    # Given intraday bars: day 1 dips to 90 but ends at 110; day 2 ends at 99; no bars on day 3;
    # day 4 ends at 121
    times = _times(
        "2024-03-01T09:00",
        "2024-03-01T13:00",
        "2024-03-01T23:59:59",
        "2024-03-02T00:00",
        "2024-03-02T18:00",
        "2024-03-04T12:00",
    )
    equity = [100.0, 90.0, 110.0, 112.0, 99.0, 121.0]
    # When
    labels, r = daily_returns(times, np.asarray(equity), 100.0)
    values, _ = compute_metrics(_inputs(equity, times=times, initial_capital=100.0))
    # Then days are UTC calendar days that have bars, each against the previous day's last equity
    assert labels.astype(str).tolist() == ["2024-03-01", "2024-03-02", "2024-03-04"]
    assert r == pytest.approx([0.10, 99 / 110 - 1, 121 / 99 - 1], rel=1e-12)
    # and the max drawdown sees the intraday dip (−10% against 100) and the 112 → 99 fall (−11.607%)
    assert values["max_drawdown_percent"] == pytest.approx((99 / 112 - 1) * 100, rel=REL)
    assert values["max_drawdown"] == pytest.approx(-13.0, rel=REL)
    assert values["trading_days"] == 3


def test_drawdown_periods_depths_and_durations() -> None:
    # Given daily bars: peak 105 (bar 1) recovered at bar 4; peak 106 (bar 4) recovered at bar 7;
    # peak 107 (bar 7) still under water at the last bar
    equity = [100.0, 105.0, 100.0, 103.0, 106.0, 104.0, 104.0, 107.0, 103.0]
    values, notes = compute_metrics(_inputs(equity, initial_capital=100.0))
    depths = [100 / 105 - 1, 104 / 106 - 1, 103 / 107 - 1]
    assert values["max_drawdown_percent"] == pytest.approx(depths[0] * 100, rel=REL)
    assert values["avg_drawdown_percent"] == pytest.approx(sum(depths) / 3 * 100, rel=REL)
    assert values["max_drawdown_duration_days"] == pytest.approx(3.0, rel=REL)
    assert values["avg_drawdown_duration_days"] == pytest.approx(7 / 3, rel=REL)
    assert values["max_drawdown"] == pytest.approx(-5.0, rel=REL)
    assert values["recovery_factor"] == pytest.approx(3.0 / 5.0, rel=REL)
    peak = [100, 105, 105, 105, 106, 106, 106, 107, 107]
    dd = [(e / p - 1) * 100 for e, p in zip(equity, peak, strict=True)]
    assert values["ulcer_index"] == pytest.approx(math.sqrt(sum(x * x for x in dd) / len(dd)), rel=REL)
    assert drawdown_percent(np.asarray(equity), 100.0) == pytest.approx(dd, rel=1e-12, abs=1e-12)
    _assert_json_ready(values, notes)


def test_drawdown_from_the_initial_capital_counts() -> None:
    # Given the very first bar is already below the initial capital
    values, _ = compute_metrics(_inputs([95.0, 97.0, 101.0], initial_capital=100.0))
    assert values["max_drawdown_percent"] == pytest.approx(-5.0, rel=REL)
    assert values["max_drawdown_duration_days"] == pytest.approx(2.0, rel=REL)  # first bar → recovery bar
    assert values["equity_peak"] == 101.0


def test_exposure_commissions_and_buy_and_hold() -> None:
    values, _ = compute_metrics(
        _inputs(
            [100.0, 100.0, 101.0, 102.0, 100.0],
            close=[20.0, 21.0, 22.0, 23.0, 25.0],
            position=[0.0, 2.0, -1.5, 0.0, 0.0],
            total_commission=3.25,
        )
    )
    assert values["exposure_time_percent"] == pytest.approx(40.0, rel=REL)
    assert values["commissions_paid"] == 3.25
    assert values["buy_and_hold_return_percent"] == pytest.approx(25.0, rel=REL)


# ---- trade statistics on a known list -------------------------------------------------------------


def test_trade_statistics_golden_values() -> None:
    # Given 8 trades in exit order: W W B W L L L W (B = breakeven) on hourly bars
    pnl = [100.0, 200.0, 0.0, 75.0, -50.0, -25.0, -25.0, 50.0]
    entry = [0, 3, 10, 12, 20, 30, 40, 41]
    exit_ = [2, 9, 11, 18, 29, 39, 41, 47]
    sizes = [1.0, 2.0, 1.0, 1.0, 4.0, 1.0, 1.0, 2.0]
    prices = [100.0, 100.0, 50.0, 100.0, 25.0, 100.0, 100.0, 50.0]
    ret = [10.0, 10.0, 0.0, 7.5, -5.0, -2.5, -2.5, 5.0]
    side = [1, 1, -1, 1, -1, -1, 1, 1]
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(48) * np.timedelta64(1, "h")
    trades = _trades(pnl, entry, exit_, side, sizes, prices, ret)
    # When
    values, notes = compute_metrics(_inputs(np.full(48, 1000.0), times=times, initial_capital=1000.0, trades=trades))
    # Then
    n, wins, losses = 8, [100.0, 200.0, 75.0, 50.0], [-50.0, -25.0, -25.0]
    assert values["total_trades"] == n
    assert values["winning_trades"] == 4 and values["losing_trades"] == 3
    assert values["long_trades"] == 5 and values["short_trades"] == 3
    assert values["win_rate"] == pytest.approx(50.0, rel=REL)
    assert values["gross_profit"] == pytest.approx(425.0, rel=REL)
    assert values["gross_loss"] == pytest.approx(100.0, rel=REL)
    assert values["profit_factor"] == pytest.approx(4.25, rel=REL)
    assert values["expectancy"] == pytest.approx(325.0 / 8, rel=REL)
    notional = 100 + 200 + 50 + 100 + 100 + 100 + 100 + 100  # Σ size · entry_price
    assert values["expectancy_percent"] == pytest.approx(325.0 / notional * 100, rel=REL)
    assert values["avg_win"] == pytest.approx(106.25, rel=REL)
    assert values["avg_loss"] == pytest.approx(-100.0 / 3, rel=REL)
    assert values["largest_win"] == 200.0 and values["largest_loss"] == -50.0
    payoff = 106.25 / (100.0 / 3)
    assert values["payoff_ratio"] == pytest.approx(payoff, rel=REL)
    assert values["kelly_criterion"] == pytest.approx(0.5 - 0.5 / payoff, rel=REL)
    assert values["sqn"] == pytest.approx(math.sqrt(n) * statistics.mean(pnl) / statistics.stdev(pnl), rel=REL)
    assert values["max_consecutive_wins"] == 2  # the breakeven trade breaks W W _ W
    assert values["max_consecutive_losses"] == 3
    assert values["avg_trade_return_percent"] == pytest.approx(statistics.mean(ret), rel=REL)
    assert values["best_trade_percent"] == 10.0 and values["worst_trade_percent"] == -5.0
    bars = [x - e for e, x in zip(entry, exit_, strict=True)]
    assert values["avg_trade_duration_bars"] == pytest.approx(statistics.mean(bars), rel=REL)
    assert values["avg_trade_duration_days"] == pytest.approx(statistics.mean(bars) / 24, rel=REL)
    assert values["max_trade_duration_days"] == pytest.approx(9 / 24, rel=REL)
    assert values["min_trade_duration_days"] == pytest.approx(1 / 24, rel=REL)
    assert sum(wins) / -sum(losses) == values["profit_factor"]
    _assert_json_ready(values, notes)


# ---- independent references (pandas) --------------------------------------------------------------


@pytest.fixture(scope="module")
def random_run() -> tuple[MetricInputs, pd.Series, pd.Series]:
    """About 300 days of irregular intraday bars (some days without bars), a random equity and close."""
    rng = np.random.default_rng(7)
    gaps = rng.choice([15, 60, 240, 900, 3000], size=3000, p=[0.4, 0.3, 0.2, 0.07, 0.03])
    times = np.datetime64("2023-01-02T14:30", "ns") + np.cumsum(gaps) * np.timedelta64(1, "m")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, times.shape[0])))
    equity = 10_000 * np.exp(np.cumsum(0.4 * np.diff(np.log(close), prepend=np.log(100)) + rng.normal(0, 0.004, 3000)))
    inputs = _inputs(equity, times=times, close=close, initial_capital=10_000.0, periods_per_year=365)
    idx = pd.DatetimeIndex(times)
    return inputs, pd.Series(equity, index=idx), pd.Series(close, index=idx)


def _pandas_daily(series: pd.Series, base: float) -> pd.Series:
    daily = series.resample("D").last().dropna()
    return pd.concat([pd.Series([base]), daily.reset_index(drop=True)]).pct_change().dropna()


def test_return_ratios_match_pandas(random_run: tuple[MetricInputs, pd.Series, pd.Series]) -> None:
    inputs, equity, _ = random_run
    values, notes = compute_metrics(inputs)
    r = _pandas_daily(equity, 10_000.0)
    n = 365
    _, mine = daily_returns(inputs.times, inputs.equity, 10_000.0)
    np.testing.assert_allclose(mine, r.to_numpy(), rtol=1e-12)
    assert values["trading_days"] == len(r)
    assert values["sharpe_ratio"] == pytest.approx(r.mean() / r.std() * math.sqrt(n), rel=REL)
    downside = math.sqrt((r.clip(upper=0) ** 2).mean())
    assert values["sortino_ratio"] == pytest.approx(r.mean() * n / (downside * math.sqrt(n)), rel=REL)
    assert values["volatility_percent"] == pytest.approx(r.std() * math.sqrt(n) * 100, rel=REL)
    assert values["skew"] == pytest.approx(r.skew(), rel=REL)
    assert values["kurtosis"] == pytest.approx(r.kurt(), rel=REL)
    assert values["var_95_percent"] == pytest.approx(r.quantile(0.05) * 100, rel=REL)
    assert values["cvar_95_percent"] == pytest.approx(r[r <= r.quantile(0.05)].mean() * 100, rel=REL)
    assert values["tail_ratio"] == pytest.approx(abs(r.quantile(0.95)) / abs(r.quantile(0.05)), rel=REL)
    assert values["omega_ratio"] == pytest.approx(r[r > 0].sum() / -r[r < 0].sum(), rel=REL)
    assert values["best_day_percent"] == pytest.approx(r.max() * 100, rel=REL)
    growth = equity.iloc[-1] / 10_000.0
    assert values["annualized_return_percent"] == pytest.approx((growth ** (n / len(r)) - 1) * 100, rel=REL)
    assert {d.key for d in METRIC_DEFINITIONS if d.category != "trades"}.isdisjoint(notes)  # no trades here


def test_drawdown_and_cagr_match_pandas(random_run: tuple[MetricInputs, pd.Series, pd.Series]) -> None:
    inputs, equity, _ = random_run
    values, _ = compute_metrics(inputs)
    peak = equity.cummax().clip(lower=10_000.0)
    assert values["max_drawdown_percent"] == pytest.approx(((equity / peak - 1).min()) * 100, rel=REL)
    assert values["max_drawdown"] == pytest.approx((equity - peak).min(), rel=REL)
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86_400
    cagr = (equity.iloc[-1] / 10_000.0) ** (365.25 / days) - 1
    assert values["cagr_percent"] == pytest.approx(cagr * 100, rel=REL)
    assert values["calmar_ratio"] == pytest.approx(cagr / abs((equity / peak - 1).min()), rel=REL)
    ulcer = math.sqrt((((equity / peak - 1) * 100) ** 2).mean())
    assert values["ulcer_index"] == pytest.approx(ulcer, rel=REL)


def test_alpha_beta_match_pandas(random_run: tuple[MetricInputs, pd.Series, pd.Series]) -> None:
    inputs, equity, close = random_run
    values, _ = compute_metrics(inputs)
    r = _pandas_daily(equity, 10_000.0)
    b = _pandas_daily(close, float(close.iloc[0]))
    beta = r.cov(b) / b.var()
    assert 0.2 < beta < 0.6  # the equity was built with 0.4 × the close's moves
    assert values["beta"] == pytest.approx(beta, rel=REL)
    assert values["alpha_percent"] == pytest.approx((r.mean() - beta * b.mean()) * 365 * 100, rel=REL)
    assert values["buy_and_hold_return_percent"] == pytest.approx((close.iloc[-1] / close.iloc[0] - 1) * 100, rel=REL)


# ---- edge cases: never NaN or infinite, a note for every None -------------------------------------


def _edge_cases() -> dict[str, MetricInputs]:
    win3 = _trades([10.0, 20.0, 5.0], [0, 1, 2], [1, 2, 3])
    lose3 = _trades([-10.0, -20.0, -5.0], [0, 1, 2], [1, 2, 3])
    return {
        "no_trades": _inputs([100.0, 101.0, 102.0, 101.5, 103.0]),
        "one_bar": _inputs([100.0], trades=TradeRecords.empty()),
        "no_bars": _inputs([]),
        "flat_equity": _inputs([100.0] * 10),
        "all_winning": _inputs([101.0, 103.0, 103.5, 104.0, 105.0], trades=win3),
        "all_losing": _inputs([99.0, 97.0, 96.5, 95.0, 94.0], trades=lose3),
        "one_trade": _inputs([100.0, 99.0, 98.0], trades=_trades([-2.0], [0], [2])),
        "constant_growth": _inputs([100.0 * 1.01**i for i in range(1, 8)]),
        "under_one_day": _inputs(
            [100.0, 130.0, 170.0], times=_times("2024-01-01T10:00", "2024-01-01T11", "2024-01-01T12")
        ),
        "explosive_short_span": _inputs([100.0, 1e12], times=_times("2024-01-01T00:00", "2024-01-02T01:00")),
        "equity_wiped_out": _inputs([100.0, 50.0, 0.0, -10.0, -5.0], trades=_trades([-105.0], [0], [4])),
        "flat_close": _inputs([100.0, 101.0, 100.5, 102.0], close=[10.0, 10.0, 10.0, 10.0]),
    }


@pytest.mark.parametrize("case", list(_edge_cases()))
def test_edge_cases_give_finite_values_or_none_with_a_reason(case: str) -> None:
    values, notes = compute_metrics(_edge_cases()[case])
    assert list(values) == list(METRIC_KEYS)
    _assert_json_ready(values, notes)


def test_edge_case_values() -> None:
    cases = _edge_cases()
    v, n = compute_metrics(cases["no_trades"])
    assert v["total_trades"] == 0 and v["win_rate"] is None and n["win_rate"] == "no trades"
    assert v["profit_factor"] is None and v["max_consecutive_wins"] == 0 and v["gross_profit"] == 0.0

    v, n = compute_metrics(cases["one_bar"])
    assert v["trading_days"] == 1 and v["best_day_percent"] == 0.0 and v["total_return_percent"] == 0.0
    assert v["sharpe_ratio"] is None and "at least 2 days" in n["sharpe_ratio"]
    assert v["cagr_percent"] is None and "one day" in n["cagr_percent"]
    assert v["max_drawdown_percent"] == 0.0

    v, n = compute_metrics(cases["flat_equity"])
    assert v["sharpe_ratio"] is None and "zero volatility" in n["sharpe_ratio"]
    assert v["sortino_ratio"] is None and v["calmar_ratio"] is None and v["recovery_factor"] is None
    assert v["max_drawdown"] == 0.0 and v["avg_drawdown_percent"] == 0.0 and v["max_drawdown_duration_days"] == 0.0
    assert v["cagr_percent"] == 0.0 and v["volatility_percent"] is None

    v, n = compute_metrics(cases["all_winning"])
    assert v["win_rate"] == 100.0 and v["profit_factor"] is None and "no losing trades" in n["profit_factor"]
    assert v["kelly_criterion"] is None and v["max_consecutive_wins"] == 3 and v["gross_loss"] == 0.0

    v, n = compute_metrics(cases["all_losing"])
    assert v["win_rate"] == 0.0 and v["profit_factor"] == 0.0 and v["avg_win"] is None
    assert v["max_consecutive_losses"] == 3 and v["kelly_criterion"] is None

    v, n = compute_metrics(cases["one_trade"])
    assert v["sqn"] is None and "2 trades" in n["sqn"]

    v, n = compute_metrics(cases["constant_growth"])  # 1% every day: zero volatility, not a huge Sharpe
    assert v["sharpe_ratio"] is None and v["skew"] is None and v["sortino_ratio"] is None

    v, n = compute_metrics(cases["explosive_short_span"])
    assert v["cagr_percent"] is None and "too large" in n["cagr_percent"]

    v, n = compute_metrics(cases["equity_wiped_out"])
    assert v["cagr_percent"] == -100.0 and v["sharpe_ratio"] is None and "zero or below" in n["sharpe_ratio"]

    v, n = compute_metrics(cases["flat_close"])
    assert v["beta"] is None and v["alpha_percent"] is None and v["buy_and_hold_return_percent"] == 0.0


# ---- input validation -----------------------------------------------------------------------------


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(_inputs([100.0, 101.0], close=[1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="ascending"):
        compute_metrics(_inputs([100.0, 101.0], times=_times("2024-01-02", "2024-01-01")))
    with pytest.raises(ValueError, match="trade bars"):
        compute_metrics(_inputs([100.0, 101.0], trades=_trades([1.0], [0], [2])))
    with pytest.raises(ValueError, match="initial_capital"):
        compute_metrics(_inputs([100.0], initial_capital=0.0))
    with pytest.raises(ValueError, match="equal lengths"):
        TradeRecords.empty().__class__(**{**TradeRecords.empty().__dict__, "pnl": np.zeros(1)})


def test_empty_trade_records_have_the_contract_dtypes() -> None:
    t = TradeRecords.empty()
    assert len(t) == 0
    assert t.entry_bar.dtype == np.int64 and t.side.dtype == np.int8 and t.closed_by_end.dtype == np.bool_
    assert t.pnl.dtype == np.float64
