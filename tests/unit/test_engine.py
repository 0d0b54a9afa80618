"""`run_backtest` end to end in-process: the full result's fields, JSON safety, determinism, user data."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from backtest_engine import __version__
from backtest_engine.csv_data import read_csv_bars
from backtest_engine.engine import run_backtest
from backtest_engine.errors import StrategyCompileError, UserInputError
from backtest_engine.metric_definitions import METRIC_KEYS
from backtest_engine.models import BacktestRequest
from backtest_engine.result import json_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def request(code: str, **fields) -> BacktestRequest:
    base = {"symbol": "AAPL", "timeframe": "1d", "start_date": date(2023, 1, 1), "end_date": date(2024, 12, 31)}
    return BacktestRequest(strategy_code=code, **{**base, **fields})


@pytest.fixture(scope="module")
def sma_result():
    return run_backtest(request((EXAMPLES / "sma_crossover_vectorized.py").read_text()))


def test_full_result_has_every_documented_field(sma_result):
    data = json.loads(json_bytes(sma_result))
    for key in (
        "request",
        "performance_metrics",
        "trade_summary",
        "market_data_stats",
        "trades",
        "equity_curve",
        "logs",
        "engine_version",
        "data_fingerprint",
        "periods_per_year",
    ):
        assert key in data
    assert list(data["performance_metrics"]) == list(METRIC_KEYS)
    assert data["engine_version"] == __version__
    assert data["periods_per_year"] == 252
    n = data["market_data_stats"]["data_points"]
    assert (
        n
        == len(data["equity_curve"]["time"])
        == len(data["equity_curve"]["equity"])
        == len(data["equity_curve"]["drawdown_pct"])
    )
    assert data["equity_curve"]["time"][0].endswith("Z")
    trades = data["trades"]  # columnar: one list per field, one entry per trade
    assert data["trade_summary"]["total_trades"] == len(trades["pnl"]) > 0
    assert {len(column) for column in trades.values()} == {len(trades["pnl"])}
    assert trades["side"][0] in ("long", "short") and trades["exit_reason"][0] == "signal"
    assert trades["entry_time"][0].endswith("Z")
    assert json.loads(json_bytes(sma_result)) == sma_result.model_dump(mode="json")
    assert set(trades) >= {
        "entry_time",
        "exit_time",
        "entry_bar",
        "exit_bar",
        "side",
        "size",
        "entry_price",
        "exit_price",
        "pnl",
        "return_pct",
        "commission",
    }


def test_result_is_consistent_with_itself(sma_result):
    m = sma_result.performance_metrics
    eq = sma_result.equity_curve.equity
    assert m["final_capital"] == pytest.approx(eq[-1])
    assert m["total_return_percent"] == pytest.approx((eq[-1] / 10_000 - 1) * 100)
    assert m["total_trades"] == sma_result.trade_summary.total_trades
    assert sma_result.trades.pnl.sum() == pytest.approx(eq[-1] - 10_000)
    assert min(sma_result.equity_curve.drawdown_pct) == pytest.approx(m["max_drawdown_percent"])


def test_json_has_no_nan_or_infinity_even_without_trades():
    result = run_backtest(request("def generate_signals(data, params):\n    return np.zeros(len(data))\n"))
    text = json_bytes(result).decode()
    assert "NaN" not in text and "Infinity" not in text
    assert result.trade_summary.total_trades == 0
    assert result.performance_metrics["win_rate"] is None
    assert result.metric_notes["win_rate"]
    for value in result.performance_metrics.values():
        assert value is None or math.isfinite(value)


def test_same_request_gives_the_same_result(sma_result):
    again = run_backtest(request((EXAMPLES / "sma_crossover_vectorized.py").read_text()))
    assert again.data_fingerprint == sma_result.data_fingerprint
    assert np.array_equal(again.equity_curve.equity, sma_result.equity_curve.equity)
    assert again.performance_metrics == sma_result.performance_metrics


def test_compile_errors_surface_before_anything_runs():
    with pytest.raises(StrategyCompileError) as err:
        run_backtest(request("def generate_signals(data, params):\n    return generate_signals.__globals__\n"))
    assert err.value.line == 2


def test_a_range_without_enough_bars_is_a_user_error():
    # The request itself refuses a weekend for a stock (naming start_date) ...
    with pytest.raises(ValidationError, match="has 0 bar"):
        request("def on_bar(ctx, bar):\n    pass\n", start_date=date(2024, 1, 6), end_date=date(2024, 1, 7))
    # ... and the engine any range whose bars are fewer than two (a request built without validation)
    unchecked = BacktestRequest.model_construct(
        **{
            **request("def on_bar(ctx, bar):\n    pass\n").model_dump(),
            "start_date": date(2024, 1, 6),
            "end_date": date(2024, 1, 7),
        }
    )
    with pytest.raises(UserInputError, match="no AAPL session"):
        run_backtest(unchecked)


def test_user_csv_replaces_the_synthetic_data(tmp_path):
    rows = ["time,open,high,low,close,volume"]
    price = 100.0
    for day in range(60):
        rows.append(
            f"{date.fromordinal(date(2024, 1, 1).toordinal() + day)},{price},{price + 2},{price - 2},{price + 1},1000"
        )
        price += 1 if day % 7 else -5
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(rows) + "\n")
    bars = read_csv_bars(path, symbol="MINE", lot_size=0.5)
    req = BacktestRequest.model_validate(
        {
            "strategy_code": (EXAMPLES / "sma_crossover_vectorized.py").read_text(),
            "symbol": "MINE",
            "parameters": {"fast": 3, "slow": 8},
        },
        context={"custom_data": True},
    )
    result = run_backtest(req, bars=bars)
    assert result.market_data_stats.source == "csv"
    assert result.market_data_stats.data_points == 60
    assert result.trade_summary.total_trades > 0
    assert all((size / 0.5).is_integer() for size in result.trades.size.tolist())


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_runs(example):
    result = run_backtest(
        request(
            (EXAMPLES / example).read_text(), timeframe="1h", start_date=date(2024, 1, 1), end_date=date(2024, 6, 30)
        )
    )
    assert result.market_data_stats.data_points > 500
    assert result.trade_summary.total_trades > 0, example
