"""The result's JSON (`backtest_engine.result`), the broker's compact fills and chunked columns, metrics'
day ends.

The result keeps its trades and its equity curve as numpy columns and writes its JSON from them in
bounded chunks: these tests pin that the chunked JSON is exactly the JSON of the same data as Python
objects, whatever the chunk size, that times and codes read as documented, and that the stored object is
that JSON gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
import textwrap

import numpy as np
import pytest

from backtest_engine import result as result_module
from backtest_engine.bars import Bars
from backtest_engine.broker import Broker, Columns, Costs, Order, simulate_target_fills, simulate_targets
from backtest_engine.engine import equity_curve, run_backtest
from backtest_engine.metrics import _day_ends, drawdown_percent, running_max
from backtest_engine.models import BacktestRequest
from backtest_engine.result import BacktestResult, iter_json, json_bytes
from backtest_engine.sandbox import SandboxLimits
from backtest_service.result_store import gzip_chunks

LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=40)
SMA = """
def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=5)
    slow = talib.SMA(data.close.values, timeperiod=20)
    return np.where(fast > slow, 1.0, np.where(fast < slow * 0.995, -1.0, 0.0))
"""


def bars(n: int = 3000, seed: int = 3) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    times = (np.datetime64("2023-12-30T22:00") + np.arange(n) * np.timedelta64(7, "m")).astype("datetime64[ns]")
    return Bars("TEST", "1m", times, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n))


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    """A deterministic result (its stage timings, which vary from run to run, emptied)."""
    request = BacktestRequest.model_validate(
        {"strategy_code": textwrap.dedent(SMA), "symbol": "TEST"}, context={"custom_data": True}
    )
    r = run_backtest(request, bars=bars(), limits=LIMITS)
    r.timings = {}
    return r


def test_the_json_is_the_data_as_python_objects(result):
    data = json.loads(json_bytes(result))
    assert data == result.model_dump(mode="json")
    assert list(data) == list(BacktestResult.model_fields)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_any_chunk_size_gives_the_same_json(result, monkeypatch, chunk):
    whole = json_bytes(result)
    monkeypatch.setattr(result_module, "CHUNK", chunk)
    chunks = list(iter_json(result))
    assert b"".join(chunks) == whole
    if chunk == 7:  # bounded pieces: none holds more than a chunk of any column
        assert max(len(c) for c in chunks) < 7 * 40 + 4096


def test_trades_read_as_documented(result):
    trades = json.loads(json_bytes(result))["trades"]
    n = result.trade_summary.total_trades
    assert n > 10 and {len(v) for v in trades.values()} == {n}
    assert set(trades["side"]) == {"long", "short"}
    assert set(trades["exit_reason"]) <= {"signal", "stop_loss", "take_profit", "end_of_data"}
    assert all(t.endswith("Z") and len(t) == 20 for t in trades["entry_time"] + trades["exit_time"])
    assert trades["bars_held"] == [x - e for e, x in zip(trades["entry_bar"], trades["exit_bar"], strict=True)]
    rows = result.trades.rows(0, 3)
    assert [r["pnl"] for r in rows] == trades["pnl"][:3]
    assert rows[0]["side"] == trades["side"][0]


@pytest.mark.parametrize(
    "times",
    [
        np.array(["2024-02-29T12:34:56.999", "2024-03-01T00:00:00.001"], dtype="datetime64[ms]"),
        np.array(["1700-01-01", "2200-06-30T23:59:59"], dtype="datetime64[s]"),
        np.array([], dtype="datetime64[s]"),
    ],
)
def test_curve_times_are_whole_seconds_in_utc(times):
    times = times.astype("datetime64[ns]")
    equity = np.linspace(1000.0, 1100.0, times.shape[0])
    curve = equity_curve(equity, times, 1000.0)
    dumped = curve.model_dump(mode="json")
    assert dumped["time"] == [s + "Z" for s in np.datetime_as_string(times, unit="s").tolist()]
    assert dumped["drawdown_pct"] == drawdown_percent(equity, 1000.0).tolist()


def test_the_stored_object_is_the_json_gzip_compressed(result):
    stored = b"".join(gzip_chunks(iter_json(result)))
    assert gzip.decompress(stored) == json_bytes(result)
    assert len(stored) * 2 < len(json_bytes(result))


def test_columns_move_rows_into_numpy_chunks():
    columns = Columns({"a": "int64", "b": "float64"})
    lists = columns.lists()
    for k in range(Columns.CHUNK * 2 + 5):
        lists["a"].append(k)
        lists["b"].append(k / 2)
        columns.flush_if_full()
        assert len(lists["a"]) < Columns.CHUNK  # never more than a chunk of Python objects
    arrays = columns.arrays()
    assert arrays["a"].tolist() == list(range(Columns.CHUNK * 2 + 5))
    assert arrays["b"].dtype == np.float64 and arrays["b"][-1] == (Columns.CHUNK * 2 + 4) / 2


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
