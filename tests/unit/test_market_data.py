"""Synthetic market data: fixed, sliceable, consistent across timeframes, realistic, and well guarded."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from backtest_engine import portable_math as pm
from backtest_engine.bars import Bars
from backtest_engine.catalog import ANCHOR_DATE, HISTORY_END, HISTORY_START, SYMBOLS, TIMEFRAMES
from backtest_engine.errors import UserInputError
from backtest_engine.market_data import (
    _daily_path,
    aggregate,
    load_bars,
    minute_bars,
    ny_session_open_utc,
)

NY = ZoneInfo("America/New_York")
EQUITIES = [s for s, spec in SYMBOLS.items() if spec.calendar == "XNYS"]
CRYPTO = [s for s, spec in SYMBOLS.items() if spec.calendar == "24/7"]
COLUMNS = ("open", "high", "low", "close", "volume")


def digest(bars: Bars) -> str:
    h = hashlib.sha256()
    for a in (bars.times.view(np.int64), *(getattr(bars, c) for c in COLUMNS)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def assert_same_bars(a: Bars, b: Bars) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.times, b.times)
    for c in COLUMNS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)


def new_york(bars: Bars) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(bars.times).tz_localize("UTC").tz_convert(NY)


# --- portable math ---------------------------------------------------------------------------------


def test_portable_exp_and_log_match_numpy_to_a_few_ulps():
    # Given values over the ranges the generator uses (and beyond)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-40, 40, 200_000), [0.0, 1.0, -1.0, 1e-300]])
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 200_000)), rng.uniform(1e-16, 1, 100_000), [1.0, 2.0]])
    # Then they agree with numpy's own to ~1 ulp, and exactly at the easy points
    np.testing.assert_allclose(pm.exp(x), np.exp(x), rtol=2e-15, atol=0)
    np.testing.assert_allclose(pm.log(y), np.log(y), rtol=2e-15, atol=1e-300)
    np.testing.assert_allclose(pm.power(y[:1000], -2.0 / 3.0), y[:1000] ** (-2.0 / 3.0), rtol=1e-12)
    assert pm.exp(0.0) == 1.0 and pm.log(1.0) == 0.0 and float(pm.log(2.0)) == np.log(2.0)


# --- determinism -----------------------------------------------------------------------------------


def test_same_request_gives_identical_bars():
    a = load_bars("TSLA", "15m", date(2024, 5, 1), date(2024, 5, 10))
    b = load_bars("tsla", "15m", date(2024, 5, 1), date(2024, 5, 10))
    assert_same_bars(a, b)
    assert a.fingerprint() == b.fingerprint()


def test_golden_values_pin_the_generator():
    # A silent change of the generator (seeds, distributions, rounding) must fail here. If the change is
    # intended, bump GENERATOR_VERSION and update these values.
    aapl = load_bars("AAPL", "1m", date(2023, 1, 3), date(2023, 1, 4))
    assert aapl.close[[0, 1, 389, 779]].tolist() == [130.82, 130.76, 130.0, 130.1]
    assert aapl.volume[:2].tolist() == [331221.0, 255278.0]
    assert digest(aapl) == "5e3187fc1179dd34e1fe246f667b46f2dc7e87af4d3f4b877818fa8fa9159ba9"
    btc = load_bars("BTCUSD", "1h", date(2023, 1, 1), date(2023, 1, 2))
    assert btc.close[[0, 47]].tolist() == [16630.64, 16608.33]
    assert btc.high[:2].tolist() == [16724.68, 16724.03]
    assert btc.volume[:2].tolist() == [670.4228515625, 711.6337890625]
    assert digest(btc) == "c9dbcb30996bcc983996ae86294a42a6f24d77eca37418e82af6a87e2e582e49"
    eth = load_bars("ETHUSD", "1d", date(2019, 1, 1), date(2019, 12, 31))
    assert eth.close[[0, -1]].tolist() == [263.85, 220.86]
    assert digest(eth) == "1b1837e22f6be6da4b328de33bde13cc38744cfecb2300c3cffa2ad11bb01edf"


def test_symbols_are_independent():
    # Given two equities over the same month
    a = minute_bars("AAPL", date(2024, 2, 1), date(2024, 2, 29))
    b = minute_bars("MSFT", date(2024, 2, 1), date(2024, 2, 29))
    # Then their minute returns are uncorrelated (different seeds), and so are their daily paths
    ra, rb = np.diff(np.log(a.close)), np.diff(np.log(b.close))
    assert abs(np.corrcoef(ra, rb)[0, 1]) < 0.05
    da, db = np.diff(_daily_path("AAPL").close_log), np.diff(_daily_path("MSFT").close_log)
    assert abs(np.corrcoef(da, db)[0, 1]) < 0.1


@pytest.mark.parametrize("symbol", ["AAPL", "BTCUSD"])
@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_a_sub_range_is_the_slice_of_a_longer_range(symbol, timeframe):
    # Given a long range (across the March 2023 DST change) and a sub-range inside it
    long = load_bars(symbol, timeframe, date(2023, 3, 2), date(2023, 3, 20))
    short = load_bars(symbol, timeframe, date(2023, 3, 10), date(2023, 3, 14))
    # Then the short one is exactly the matching slice of the long one
    i = int(np.searchsorted(long.times, short.times[0]))
    assert i > 0 and i + len(short) < len(long)
    assert_same_bars(short, long.slice(i, i + len(short)))


# --- timeframes and sessions ------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["GOOGL", "ETHUSD"])
@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_every_timeframe_is_aggregated_from_the_minutes(symbol, timeframe):
    minutes = minute_bars(symbol, date(2024, 10, 28), date(2024, 11, 6))  # across the November DST change
    assert_same_bars(aggregate(minutes, timeframe), load_bars(symbol, timeframe, date(2024, 10, 28), date(2024, 11, 6)))


@pytest.mark.parametrize("symbol", ["AMZN", "BTCUSD"])
def test_daily_bars_summarize_their_minutes(symbol):
    # Given the minutes and the daily bars of two weeks, grouped independently with pandas
    start, end = date(2025, 3, 3), date(2025, 3, 16)
    frame = minute_bars(symbol, start, end).to_frame()
    days = frame.groupby(frame.index.normalize(), sort=True)
    daily = load_bars(symbol, "1d", start, end)
    # Then each 1d bar is the first open, max high, min low, last close and summed volume of its day
    np.testing.assert_array_equal(daily.open, days["open"].first().to_numpy())
    np.testing.assert_array_equal(daily.high, days["high"].max().to_numpy())
    np.testing.assert_array_equal(daily.low, days["low"].min().to_numpy())
    np.testing.assert_array_equal(daily.close, days["close"].last().to_numpy())
    np.testing.assert_array_equal(daily.volume, days["volume"].sum().to_numpy())
    # and its time is the day's first minute: 09:30 New York for equities, UTC midnight for crypto
    first_minute = frame.index.to_series().groupby(frame.index.normalize()).first()
    np.testing.assert_array_equal(pd.DatetimeIndex(daily.times), pd.DatetimeIndex(first_minute).tz_localize(None))
    expected = time(9, 30) if symbol in EQUITIES else time(0, 0)
    assert {t.time() for t in (new_york(daily) if symbol in EQUITIES else pd.DatetimeIndex(daily.times))} == {expected}


def test_equity_buckets_are_anchored_at_the_session_open():
    day = date(2024, 7, 9)
    hourly, four, daily = (load_bars("MSFT", tf, day, day) for tf in ("1h", "4h", "1d"))
    minutes = minute_bars("MSFT", day, day)
    # 1h bars open at 09:30, 10:30, ..., 15:30 New York; the last one holds 30 minutes
    assert [t.strftime("%H:%M") for t in new_york(hourly)] == [f"{h:02d}:30" for h in range(9, 16)]
    assert hourly.volume[-1] == minutes.volume[-30:].sum() and hourly.close[-1] == minutes.close[-1]
    assert hourly.volume[0] == minutes.volume[:60].sum() and hourly.open[0] == minutes.open[0]
    # 4h bars open at 09:30 and 13:30 (the second is 2.5 hours); the 1d bar at 09:30
    assert [t.strftime("%H:%M") for t in new_york(four)] == ["09:30", "13:30"]
    assert four.volume[1] == minutes.volume[240:].sum() and four.high[1] == minutes.high[240:].max()
    assert [t.strftime("%H:%M") for t in new_york(daily)] == ["09:30"]
    assert [len(load_bars("MSFT", tf, day, day)) for tf in TIMEFRAMES] == [390, 78, 26, 7, 2, 1]


def test_crypto_buckets_are_utc_aligned():
    day = date(2024, 7, 13)  # a Saturday
    four = load_bars("BTCUSD", "4h", day, day)
    assert [pd.Timestamp(t).hour for t in four.times] == [0, 4, 8, 12, 16, 20]
    assert [len(load_bars("BTCUSD", tf, day, day)) for tf in TIMEFRAMES] == [1440, 288, 96, 24, 6, 1]
    assert pd.Timestamp(load_bars("BTCUSD", "1d", day, day).times[0]) == pd.Timestamp(day)


@pytest.mark.parametrize(
    ("friday", "monday"), [(date(2023, 3, 10), date(2023, 3, 13)), (date(2023, 11, 3), date(2023, 11, 6))]
)
def test_equity_sessions_follow_new_york_time_across_dst(friday, monday):
    bars = minute_bars("AAPL", friday, monday)
    local = new_york(bars)
    # Every minute is inside 09:30-16:00 New York, 390 per session, one session per weekday
    assert ((local.time >= time(9, 30)) & (local.time < time(16, 0))).all()
    assert len(bars) == 2 * 390 and sorted(set(local.date)) == [friday, monday]
    assert local[0].time() == time(9, 30) and local[390].time() == time(9, 30) and local[-1].time() == time(15, 59)
    # In UTC the session moved by an hour over the weekend
    utc_open = [pd.Timestamp(bars.times[0]).hour, pd.Timestamp(bars.times[390]).hour]
    assert abs(utc_open[0] - utc_open[1]) == 1
    assert np.all(np.diff(bars.times.view(np.int64)) > 0)


def test_session_open_rule_agrees_with_the_tz_database_on_every_day():
    days = pd.date_range(HISTORY_START, HISTORY_END, freq="D")
    expected = [
        int((datetime.combine(d.date(), time(9, 30), NY).utcoffset() or timedelta()).total_seconds() * -1e9)
        + 34_200 * 10**9
        for d in days
    ]
    ordinals = days.to_numpy().astype("datetime64[D]").astype(np.int64)
    np.testing.assert_array_equal(ny_session_open_utc(ordinals), expected)


def test_equities_have_no_weekend_bars_and_crypto_trades_every_day():
    start, end = date(2024, 1, 1), date(2024, 1, 31)
    equity = minute_bars("GOOGL", start, end)
    crypto = minute_bars("ETHUSD", start, end)
    assert set(pd.DatetimeIndex(equity.times).day_of_week) == {0, 1, 2, 3, 4}
    assert len(equity) == 23 * 390  # weekdays of January 2024 (holidays are not modelled)
    assert set(pd.DatetimeIndex(crypto.times).day_of_week) == set(range(7))
    assert len(crypto) == 31 * 1440
    np.testing.assert_array_equal(np.diff(crypto.times.view(np.int64)), 60 * 10**9)


# --- consistency and realism -------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", list(SYMBOLS))
def test_ohlc_is_consistent_at_every_timeframe(symbol):
    for timeframe in TIMEFRAMES:
        bars = load_bars(symbol, timeframe, date(2020, 3, 2), date(2020, 3, 27))
        assert bars.times.dtype == np.dtype("datetime64[ns]")
        for c in COLUMNS:
            assert getattr(bars, c).dtype == np.float64 and np.isfinite(getattr(bars, c)).all()
        assert (bars.low > 0).all() and (bars.volume > 0).all()
        assert (bars.low <= np.minimum(bars.open, bars.close)).all()
        assert (np.maximum(bars.open, bars.close) <= bars.high).all()
        assert (bars.low < bars.high).mean() > 0.9
        assert (bars.symbol, bars.timeframe, bars.source) == (symbol, timeframe, "synthetic")
        assert (bars.lot_size, bars.periods_per_year) == (
            SYMBOLS[symbol].lot_size,
            SYMBOLS[symbol].periods_per_year,
        )


def test_crypto_opens_at_the_previous_close_and_equities_gap_overnight():
    crypto = minute_bars("BTCUSD", date(2022, 6, 1), date(2022, 6, 10))
    np.testing.assert_array_equal(crypto.open[1:], crypto.close[:-1])
    equity_daily = load_bars("TSLA", "1d", date(2022, 6, 1), date(2022, 6, 30))
    assert (equity_daily.open[1:] != equity_daily.close[:-1]).mean() > 0.8
    equity = minute_bars("TSLA", date(2022, 6, 1), date(2022, 6, 1))
    np.testing.assert_array_equal(equity.open[1:], equity.close[:-1])  # continuous within a session


@pytest.mark.parametrize("symbol", list(SYMBOLS))
def test_price_is_anchored_at_the_reference_and_volatility_and_drift_follow_the_spec(symbol):
    spec = SYMBOLS[symbol]
    # The close of the anchor day is the reference price, to the cent
    anchor = load_bars(symbol, "1d", ANCHOR_DATE, ANCHOR_DATE)
    assert anchor.close[-1] == spec.reference_price
    # Daily bars follow the daily path, whose realized volatility and drift are the spec's
    path = _daily_path(symbol)
    month = load_bars(symbol, "1d", date(2021, 5, 1), date(2021, 5, 31))
    i = int(np.searchsorted(path.ordinals, date(2021, 5, 1).toordinal() - date(1970, 1, 1).toordinal()))
    np.testing.assert_allclose(month.close, np.exp(path.close_log[i : i + len(month)]), atol=0.005)
    returns = np.diff(path.close_log)
    assert returns.std(ddof=1) * np.sqrt(spec.periods_per_year) == pytest.approx(spec.annual_volatility, rel=0.02)
    assert returns.mean() * spec.periods_per_year == pytest.approx(spec.annual_drift, abs=0.02)


@pytest.mark.parametrize("symbol", list(SYMBOLS))
def test_daily_returns_are_fat_tailed_and_their_volatility_clusters(symbol):
    returns = np.diff(_daily_path(symbol).close_log)
    size = np.abs(returns - returns.mean())
    size -= size.mean()
    acf = [float((size[:-lag] * size[lag:]).sum() / (size * size).sum()) for lag in range(1, 6)]
    assert min(acf) > 0.02 and np.mean(acf) > 0.05, acf
    assert pd.Series(returns).kurt() > 1.0


@pytest.mark.parametrize("symbol", ["AAPL", "ETHUSD"])
def test_minute_returns_are_fat_tailed(symbol):
    bars = minute_bars(symbol, date(2024, 4, 1), date(2024, 4, 30))
    intraday = np.log(bars.close / bars.open)  # within each minute, no overnight gaps
    assert pd.Series(intraday).kurt() > 3.0


def test_equity_volume_is_u_shaped_and_rises_with_the_move():
    bars = minute_bars("AMZN", date(2024, 1, 1), date(2024, 3, 31))
    by_minute = bars.volume.reshape(-1, 390).mean(axis=0)
    first, middle, last = by_minute[:30].mean(), by_minute[165:225].mean(), by_minute[-30:].mean()
    assert first > 1.8 * middle and last > 1.8 * middle
    move = np.abs(np.log(bars.close / bars.open))
    assert np.corrcoef(move, bars.volume / np.tile(by_minute, len(bars) // 390))[0, 1] > 0.2
    daily = load_bars("AMZN", "1d", date(2018, 1, 1), date(2019, 12, 31))
    spec = SYMBOLS["AMZN"]
    assert 0.7 * spec.daily_volume < daily.volume.mean() < 1.3 * spec.daily_volume
    assert np.corrcoef(np.abs(np.diff(np.log(daily.close))), daily.volume[1:])[0, 1] > 0.2
    assert (bars.volume == np.rint(bars.volume)).all()  # whole shares


def test_memory_follows_the_requested_output_not_the_minutes_behind_it():
    # Two years of daily crypto bars are made from a million minutes, in chunks
    load_bars("BTCUSD", "1d", date(2018, 1, 1), date(2018, 1, 2))  # warm the daily cache
    tracemalloc.start()
    daily = load_bars("BTCUSD", "1d", date(2022, 1, 1), date(2023, 12, 31))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(daily) == 730
    assert peak < 30e6  # all the minutes at once would take well over 100 MB


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("DOGE", "1h", date(2023, 1, 1), date(2023, 1, 2)), ["DOGE", "AAPL", "BTCUSD"]),
        (("AAPL", "2h", date(2023, 1, 1), date(2023, 1, 2)), ["2h", "1m", "4h"]),
        (("AAPL", "1h", date(2023, 2, 1), date(2023, 1, 2)), ["2023-02-01", "after", "2023-01-02"]),
        (
            ("AAPL", "1h", date(2017, 12, 1), date(2018, 1, 5)),
            ["2017-12-01", str(HISTORY_START), str(HISTORY_END)],
        ),
        (("BTCUSD", "1d", date(2025, 12, 1), date(2026, 1, 5)), ["2026-01-05", "outside"]),
        (("AAPL", "1h", date(2023, 1, 7), date(2023, 1, 8)), ["no AAPL session", "weekdays"]),
        (("AAPL", "1h", "2023-13-01", date(2023, 1, 8)), ["2023-13-01", "YYYY-MM-DD"]),
    ],
)
def test_bad_requests_raise_clear_user_errors(args, needles):
    with pytest.raises(UserInputError) as err:
        load_bars(*args)
    for needle in needles:
        assert needle in str(err.value)


def test_dates_may_be_iso_strings_or_datetimes():
    a = load_bars("AAPL", "1h", "2023-01-03", datetime(2023, 1, 4, 12, 0))
    b = load_bars("AAPL", "1h", date(2023, 1, 3), date(2023, 1, 4))
    assert_same_bars(a, b)


def test_aggregate_refuses_to_make_finer_bars():
    hourly = load_bars("AAPL", "1h", date(2023, 1, 3), date(2023, 1, 3))
    with pytest.raises(UserInputError, match="cannot aggregate '1h' bars to '5m'"):
        aggregate(hourly, "5m")
    with pytest.raises(UserInputError, match="unknown timeframe"):
        aggregate(hourly, "3h")
    assert_same_bars(aggregate(hourly, "1h"), hourly)
    assert_same_bars(aggregate(hourly, "1d"), load_bars("AAPL", "1d", date(2023, 1, 3), date(2023, 1, 3)))


def test_custom_minute_bars_aggregate_by_day_and_calendar():
    # Given 1m bars of an unknown symbol on a weekday calendar, starting at 08:00 UTC each day
    times = np.concatenate(
        [np.datetime64(f"2024-01-0{d}T08:00", "ns") + np.arange(120) * np.timedelta64(1, "m") for d in (2, 3)]
    )
    n = len(times)
    price = 100 + np.arange(n, dtype=float)
    bars = Bars("XYZ", "1m", times, price, price + 1, price - 1, price + 0.5, np.ones(n), periods_per_year=252)
    hourly = aggregate(bars, "1h")
    # Then buckets start at each day's first bar and never span days
    assert [str(t)[:16] for t in hourly.times] == [
        "2024-01-02T08:00",
        "2024-01-02T09:00",
        "2024-01-03T08:00",
        "2024-01-03T09:00",
    ]
    np.testing.assert_array_equal(hourly.volume, [60, 60, 60, 60])
    np.testing.assert_array_equal(hourly.open, price[[0, 60, 120, 180]])
    np.testing.assert_array_equal(hourly.close, price[[59, 119, 179, 239]] + 0.5)
    daily = aggregate(bars, "1d")
    np.testing.assert_array_equal(daily.high, [price[119] + 1, price[239] + 1])
    assert (daily.symbol, daily.source, daily.periods_per_year) == ("XYZ", "synthetic", 252)
