"""The strategy runtime through `run_backtest`: both styles, no look-ahead, typed strategy faults."""

from __future__ import annotations

import textwrap
from datetime import date

import numpy as np
import pytest

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.errors import InvalidSignals, LookAheadError, StrategyError
from backtest_engine.models import BacktestRequest
from backtest_engine.sandbox import SandboxLimits

LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=40)


def random_walk_bars(n: int = 600, seed: int = 7) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * 1.003
    low = np.minimum(open_, close) * 0.997
    times = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    return Bars("TEST", "1h", times.astype("datetime64[ns]"), open_, high, low, close, np.full(n, 1000.0), 1.0, 365)


def backtest(code: str, bars: Bars | None = None, **params):
    request = BacktestRequest.model_validate(
        {"strategy_code": textwrap.dedent(code), "symbol": "TEST", "parameters": params},
        context={"custom_data": True},
    )
    return run_backtest(request, bars=bars or random_walk_bars(), limits=LIMITS)


VECTORIZED_SMA = """
def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 10))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 30))
    return np.where(fast > slow, 1.0, 0.0)
"""
EVENT_SMA = """
def initialize(ctx):
    ctx.fast = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=ctx.params.get("fast", 10))
    ctx.slow = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=ctx.params.get("slow", 30))

def on_bar(ctx, bar):
    if ctx.fast[-1] > ctx.slow[-1]:
        ctx.buy()
    else:
        ctx.close()
"""
EVENT_SMA_WITH_TARGET = """
def initialize(ctx):
    ctx.fast = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=10)
    ctx.slow = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=30)

def on_bar(ctx, bar):
    ctx.target(1.0 if ctx.fast[-1] > ctx.slow[-1] else 0.0)
"""


def test_the_same_logic_in_both_styles_gives_identical_trades_and_equity():
    bars = random_walk_bars(800)
    vec = backtest(VECTORIZED_SMA, bars)
    evt = backtest(EVENT_SMA, bars)
    tgt = backtest(EVENT_SMA_WITH_TARGET, bars)
    assert vec.style == "vectorized" and evt.style == "event"
    assert vec.trade_summary.total_trades > 5
    assert vec.trades.rows() == evt.trades.rows()
    assert np.array_equal(vec.equity_curve.equity, evt.equity_curve.equity)
    assert np.array_equal(vec.equity_curve.equity, tgt.equity_curve.equity)
    assert vec.performance_metrics == evt.performance_metrics


def test_both_styles_agree_on_synthetic_market_data_too():
    requests = [
        BacktestRequest(
            strategy_code=code,
            symbol="MSFT",
            timeframe="1h",
            start_date=date(2024, 1, 1),
            end_date=date(2024, 6, 30),
        )
        for code in (VECTORIZED_SMA, EVENT_SMA)
    ]
    vec, evt = (run_backtest(r, limits=LIMITS) for r in requests)
    assert vec.trade_summary.total_trades > 0
    assert np.array_equal(vec.equity_curve.equity, evt.equity_curve.equity)
    assert vec.data_fingerprint == evt.data_fingerprint


def test_long_short_vectorized_matches_event_with_sell():
    bars = random_walk_bars(500)
    vec = backtest(
        """
        def generate_signals(data, params):
            ema = talib.EMA(data.close.values, timeperiod=20)
            s = np.where(data.close.values > ema, 1.0, -1.0)
            s[np.isnan(ema)] = 0.0
            return s
        """,
        bars,
    )
    evt = backtest(
        """
        def initialize(ctx):
            ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, timeperiod=20)
        def on_bar(ctx, bar):
            if ctx.ema[-1] != ctx.ema[-1]:
                return
            if bar.close > ctx.ema[-1]:
                ctx.buy()
            else:
                ctx.sell()
        """,
        bars,
    )
    assert vec.trade_summary.short_trades > 0
    assert np.array_equal(vec.equity_curve.equity, evt.equity_curve.equity)


def test_on_bar_sees_only_the_past_and_the_current_bar():
    result = backtest(
        """
        def on_bar(ctx, bar):
            assert len(ctx.data.close.values) == ctx.i + 1
            assert ctx.data.close[-1] == bar.close
            assert len(ctx.data.close[:]) == ctx.i + 1
            if ctx.i == 3:
                ctx.log("seen", len(ctx.data), ctx.data.close[0] == ctx.data.close[-4])
        """
    )
    assert result.logs == ["seen 4 True"]


@pytest.mark.parametrize(
    "peek",
    [
        "ctx.data.close[ctx.i + 1]",
        "ctx.data.close[len(ctx.data.close)]",
        "ctx.ind[ctx.i + 1]",
    ],
)
def test_reading_a_future_bar_is_refused(peek):
    code = f"""
def initialize(ctx):
    ctx.ind = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=5)

def on_bar(ctx, bar):
    x = {peek}
"""
    with pytest.raises(StrategyError) as err:
        backtest(code)
    assert err.value.line == 6
    assert "future" in err.value.message


def test_a_peeking_indicator_is_refused_as_look_ahead():
    with pytest.raises(LookAheadError, match="reads future bars"):
        backtest(
            """
            def shifted(x):
                return np.roll(x, -1)
            def initialize(ctx):
                ctx.nxt = ctx.indicator(shifted, ctx.data.close)
            def on_bar(ctx, bar):
                if ctx.nxt[-1] > bar.close:
                    ctx.buy()
            """
        )


def test_vectorized_signals_that_read_the_future_are_refused():
    with pytest.raises(LookAheadError, match="generate_signals reads future bars"):
        backtest(
            """
            def generate_signals(data, params):
                c = data.close.values
                return np.where(np.roll(c, -1) > c, 1.0, 0.0)
            """
        )


def test_the_current_bar_index_cannot_be_moved():
    with pytest.raises(StrategyError, match="read-only"):
        backtest(
            """
            def on_bar(ctx, bar):
                ctx.i = 10**6
            """
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return np.ones(10)", "returned 10 values for 600 bars"),
        ("return np.full(len(data), 2.0)", "out of range"),
        ("return np.full(len(data), np.inf)", "out of range"),
        ("return 'buy'", "must return numbers"),
        ("return np.ones((len(data), 2))", "expected a 1-D series"),
    ],
)
def test_invalid_signals_are_typed_errors(body, message):
    with pytest.raises(InvalidSignals, match=message):
        backtest(f"def generate_signals(data, params):\n    {body}\n")


def test_a_strategy_exception_names_its_line():
    with pytest.raises(StrategyError) as err:
        backtest(
            """
            def on_bar(ctx, bar):
                if ctx.i == 5:
                    return 1 / 0
            """
        )
    assert err.value.line == 4
    assert "ZeroDivisionError" in err.value.message


def test_stop_loss_exit_is_reported_and_entry_allowed_again():
    result = backtest(
        """
        def on_bar(ctx, bar):
            if ctx.position == 0:
                ctx.buy(sl=bar.close * 0.995, tp=bar.close * 1.01)
        """
    )
    reasons = {t["exit_reason"] for t in result.trades.rows()}
    assert {"stop_loss", "take_profit"} <= reasons
    assert result.trade_summary.total_trades > 10


def test_parameters_reach_both_styles():
    bars = random_walk_bars(400)
    a = backtest(VECTORIZED_SMA, bars, fast=5, slow=20)
    b = backtest(VECTORIZED_SMA, bars)
    assert a.trade_summary.total_trades != b.trade_summary.total_trades
    assert a.request["parameters"] == {"fast": 5, "slow": 20}
