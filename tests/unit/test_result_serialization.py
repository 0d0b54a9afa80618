"""The result's deferred equity curve and its JSON; the broker's compact fills; metrics' day ends.

The engine keeps the equity curve as numpy arrays until something reads it (`EquityCurve.deferred`) and
writes its JSON straight from them: these tests pin that every way of reading the result gives what a
curve built from lists gives, byte for byte.
"""

from __future__ import annotations

import copy
import json
import pickle
import textwrap

import numpy as np
import pytest

from backtest_engine import engine
from backtest_engine.bars import Bars
from backtest_engine.broker import Broker, Costs, Order, simulate_target_fills, simulate_targets
from backtest_engine.engine import CurveArrays, run_backtest
from backtest_engine.metrics import _day_ends, drawdown_percent, running_max
from backtest_engine.models import BacktestRequest, BacktestResult, EquityCurve
from backtest_engine.sandbox import SandboxLimits

LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=40)
SMA = """
def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=5)
    slow = talib.SMA(data.close.values, timeperiod=20)
    return np.where(fast > slow, 1.0, 0.0)
"""


def bars(n: int = 3000, seed: int = 3) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    times = (np.datetime64("2023-12-30T22:00") + np.arange(n) * np.timedelta64(7, "m")).astype("datetime64[ns]")
    return Bars("TEST", "1m", times, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n))


def result() -> BacktestResult:
    """A deterministic result (its stage timings, which vary from run to run, emptied)."""
    request = BacktestRequest.model_validate(
        {"strategy_code": textwrap.dedent(SMA), "symbol": "TEST"}, context={"custom_data": True}
    )
    r = run_backtest(request, bars=bars(), limits=LIMITS)
    r.timings = {}
    return r


def from_lists(curve: EquityCurve) -> EquityCurve:
    """The same curve built the plain way, from lists."""
    return EquityCurve(time=list(curve.time), equity=list(curve.equity), drawdown_pct=list(curve.drawdown_pct))


def test_the_result_json_is_pydantics_json_of_the_same_data_byte_for_byte():
    # Given a result whose equity curve is deferred (numpy arrays)
    deferred = result()
    assert deferred.equity_curve.is_deferred
    # When it is dumped, and the same result with a list-built curve is dumped
    fast = deferred.model_dump_json()
    plain = deferred.model_copy(update={"equity_curve": from_lists(result().equity_curve)})
    # Then both texts are identical, and the curve is still deferred (the fast path made no lists)
    assert fast == plain.model_dump_json()
    assert deferred.equity_curve.is_deferred
    data = json.loads(fast)
    assert list(data) == list(BacktestResult.model_fields)
    assert len(data["equity_curve"]["time"]) == len(data["equity_curve"]["equity"]) == 3000
    assert data["equity_curve"]["time"][:2] == ["2023-12-30T22:00:00Z", "2023-12-30T22:07:00Z"]


@pytest.mark.parametrize(
    "exclude",
    [{"equity_curve"}, {"trades"}, {"equity_curve", "trades"}, {"request", "timings"}, {"logs", "engine_version"}],
)
def test_exclude_gives_what_pydantic_gives(exclude):
    deferred, plain = result(), result()
    plain.equity_curve.materialize()
    assert not plain.equity_curve.is_deferred
    assert deferred.model_dump_json(exclude=exclude) == plain.model_dump_json(exclude=exclude)


def test_other_options_fall_back_to_pydantic_with_the_lists():
    deferred = result()
    indented = deferred.model_dump_json(indent=2)
    assert json.loads(indented) == json.loads(result().model_dump_json())
    assert not deferred.equity_curve.is_deferred  # the fallback made the lists


def test_reading_the_curve_makes_the_lists_once():
    r = result()
    curve = r.equity_curve
    equity = curve.equity
    # The lists are the engine's arrays, exactly
    assert isinstance(equity, list) and isinstance(curve.time, list)
    assert not curve.is_deferred
    assert curve.equity is equity  # made once, then plain pydantic fields
    assert curve.time[0] == "2023-12-30T22:00:00Z" and curve.time[-1].endswith("Z")
    assert curve.drawdown_pct == drawdown_percent(np.asarray(equity), 10_000.0).tolist()
    assert r.performance_metrics["final_capital"] == pytest.approx(equity[-1], rel=1e-11)


def test_deferred_and_list_curves_compare_dump_copy_and_pickle_alike():
    a, b = result(), result()
    b.equity_curve.materialize()
    assert a.equity_curve.model_dump() == b.equity_curve.model_dump()
    c = result()
    assert c == b  # equality makes the lists
    assert dict(result().equity_curve)["equity"] == b.equity_curve.equity
    assert "equity=[" in repr(result().equity_curve)
    for clone in (copy.deepcopy(result()), pickle.loads(pickle.dumps(result())), result().model_copy()):
        assert clone.model_dump_json() == b.model_dump_json()
    assert result().model_dump(mode="json") == json.loads(b.model_dump_json())


@pytest.mark.parametrize(
    "times",
    [
        # minutes across a day, a month and a year boundary
        np.datetime64("2019-12-31T23:57") + np.arange(9) * np.timedelta64(1, "m"),
        # seconds across the epoch (negative epoch seconds)
        np.datetime64("1969-12-31T23:59:57") + np.arange(6) * np.timedelta64(1, "s"),
        # sub-second times are cut to the second, as np.datetime_as_string(unit="s") does
        np.array(
            ["2024-02-29T12:34:56.999", "2024-03-01T00:00:00.001", "2100-01-01T00:00:00.5"], dtype="datetime64[ms]"
        ),
        # very sparse times (the generic path)
        np.array(["1700-01-01", "2200-06-30T23:59:59"], dtype="datetime64[s]"),
        np.array([], dtype="datetime64[s]"),
    ],
)
def test_curve_json_matches_the_lists_for_any_times(times, monkeypatch):
    monkeypatch.setattr(engine, "_JSON_CHUNK", 4)  # several chunks: the drawdown's running peak carries over
    times = times.astype("datetime64[ns]")
    rng = np.random.default_rng(len(times))
    equity = 1000 * np.exp(np.cumsum(rng.normal(0, 0.05, times.shape[0])))
    columns = CurveArrays(times, equity, 1000.0)
    t, e, d = columns.lists()
    assert t == [s + "Z" for s in np.datetime_as_string(times, unit="s").tolist()]
    assert columns.json() == EquityCurve(time=t, equity=e, drawdown_pct=d).model_dump_json()


def test_fills_expand_to_the_ledger_finish_gives():
    # Given a broker with two fills on one bar (a flip splits into a close and an open) and an open position
    close = np.array([100.0, 101.0, 99.0, 98.0, 97.0, 96.0])
    open_ = np.array([100.0, 100.5, 101.5, 98.5, 97.5, 96.5])
    costs = Costs(commission=0.001, slippage=0.0005, lot_size=1.0)

    def trade() -> Broker:
        b = Broker(10_000.0, costs, open_, close)
        b.execute(Order("target", 1.0), 1)
        b.execute(Order("target", -0.5), 3)
        b.execute(Order("target", 0.5), 3)
        return b

    ledger = trade().finish()
    fills = trade().fills()
    # Then the compact fills expand to the same per-bar arrays, the last fill of a bar counting
    expanded = fills.ledger(close)
    assert np.array_equal(expanded.equity, ledger.equity) and np.array_equal(expanded.position, ledger.position)
    assert expanded.fills == ledger.fills == fills.bar.shape[0]
    assert ledger.position[3] > 0 and ledger.position[0] == 0
    with pytest.raises(ValueError, match="bars"):
        fills.ledger(close[:-1])


def test_simulate_targets_is_its_fills_expanded():
    rng = np.random.default_rng(11)
    n = 500
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.concatenate(([50.0], close[:-1]))
    targets = rng.choice([-1.0, 0.0, 0.4, 1.0, np.nan], size=n)
    costs = Costs(commission=0.002, slippage=0.001, lot_size=0.01)
    ledger = simulate_targets(targets, open_, close, 5_000.0, costs)
    fills = simulate_target_fills(targets, open_, close, 5_000.0, costs)
    assert np.array_equal(fills.ledger(close).equity, ledger.equity)
    assert np.array_equal(fills.trades.pnl, ledger.trades.pnl)


def test_day_ends_finds_each_days_last_bar():
    rng = np.random.default_rng(5)
    # bars at random minutes over 40 days, with whole days missing, some before the epoch
    minutes = np.sort(rng.choice(np.arange(-20 * 1440, 20 * 1440), size=3000, replace=False))
    minutes = minutes[(minutes // 1440) % 7 != 3]
    times = (np.datetime64("1970-01-01") + minutes * np.timedelta64(1, "m")).astype("datetime64[ns]")
    labels, ends = _day_ends(times)
    days = times.astype("datetime64[D]")
    expected = np.append(np.flatnonzero(days[1:] != days[:-1]), len(days) - 1)
    assert np.array_equal(ends, expected)
    assert np.array_equal(labels, days[expected])
    # sparse times take the other path and agree too
    sparse = np.array(["1900-01-01T10:00", "1900-01-01T11:00", "2100-01-01"], dtype="datetime64[ns]")
    labels, ends = _day_ends(sparse)
    assert ends.tolist() == [1, 2] and str(labels[1]) == "2100-01-01"


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 50_000])
@pytest.mark.parametrize("shape", ["random_walk", "rising", "falling"])
def testrunning_max_is_exactly_the_accumulated_maximum(n, shape):
    rng = np.random.default_rng(n)
    steps = {"random_walk": 0.0, "rising": 1e-3, "falling": -1e-3}[shape]
    values = 100 * np.exp(np.cumsum(rng.normal(steps, 1e-3, n)))
    for start in (100.0, 0.0, 1e9):  # a start below, at and above every value
        expected = np.maximum(np.maximum.accumulate(values), start) if n else values.copy()
        assert np.array_equal(running_max(values, start), expected)
