"""Synthetic market data: one fixed 1-minute history per symbol, and its aggregation to every timeframe.

How the history is made (all of it reproducible bit for bit, see "Determinism" below):

1. Daily level, once per symbol for the whole catalog span (``_daily_path``, cached): GARCH(1,1)
   volatility clustering driven by standardized Student-t shocks (the symbol's ``tail_dof``). Each
   session gets an open and a close: equities gap overnight (a fifth of the daily variance falls
   between the close and the next open), crypto opens at the previous close. The innovations are then
   calibrated over the whole span so that the realized volatility of daily log returns equals the
   spec's ``annual_volatility`` and their mean equals ``annual_drift`` (both per ``periods_per_year``),
   and the log-price path is shifted so the close of ``ANCHOR_DATE`` is the spec's ``reference_price``.
2. Minute level, per day from that day's own seed: fat-tailed Student-t increments scaled by an
   intraday volatility profile (U-shaped for equities, a mild hump around the US/European overlap for
   crypto) and the day's GARCH volatility, tied by a variance-weighted bridge to the day's open and
   close. Each minute's high and low are drawn from the Brownian-bridge law of the extremes between its
   open and close. Volume follows an intraday profile (U-shaped for equities), rises with the day's
   volatility and the size of the move, and has multiplicative noise.
3. Prices are rounded to the cent, equity volumes to whole shares and crypto volumes to 2**-12 coin.

Sessions: equities trade 09:30-16:00 America/New_York on every weekday (US daylight saving time is
applied with the rules in force since 2007; exchange holidays are *not* modelled: every weekday is a
session). Crypto trades 00:00-24:00 UTC every day. Bar times are open times, UTC.

Timeframes are aggregated from the 1-minute bars (``aggregate``): the open of a bucket is its first
open, the close its last close, high the max, low the min and volume the sum. Equity buckets are
anchored at the 09:30 session open (1h bars at 09:30, 10:30, ..., 15:30 (30 minutes); 4h bars at 09:30
and 13:30), crypto buckets at UTC midnight; no bar spans two days.

Determinism: every random number comes from the raw 64-bit output of a PCG64 bit generator seeded
with a BLAKE2b hash of (generator version, symbol, day); numpy guarantees those raw streams, unlike
its distribution methods. The raw bits are turned into floats and distributions here with IEEE-754
basic operations only, and `exp`/`log` come from `portable_math`, so the bars do not depend on the
CPU, the libm or the numpy version. A day's minutes depend only on the daily path and that day's seed,
so a sub-range is exactly the slice of a longer range. Memory: the work is done in chunks of about
65k minutes, so aggregated requests need memory for their output only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache

import numpy as np

from backtest_engine import portable_math as pm
from backtest_engine.bars import Bars
from backtest_engine.catalog import (
    ANCHOR_DATE,
    HISTORY_END,
    HISTORY_START,
    SYMBOLS,
    TIMEFRAMES,
    SymbolSpec,
    symbol_spec,
)
from backtest_engine.errors import UserInputError

__all__ = ["GENERATOR_VERSION", "aggregate", "load_bars", "minute_bars", "ny_session_open_utc"]

# Part of every seed: changing the generator's algorithm means changing this, and the golden test.
GENERATOR_VERSION = "synthetic-v1"

MINUTE_NS = 60 * 1_000_000_000
DAY_NS = 1440 * MINUTE_NS
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Daily process.
_GARCH_ALPHA = 0.07  # weight of yesterday's squared innovation
_GARCH_BETA = 0.91  # weight of yesterday's variance (persistence alpha + beta = 0.98)
_OVERNIGHT_SHARE = 0.2  # share of an equity's daily variance (and drift) between close and next open
_DAILY_SHOCK_CLIP = 10.0  # standardized daily shocks are clipped to +-10 sd
# Minute process.
_MINUTE_SHOCK_CLIP = 20.0  # standardized minute shocks are clipped to +-20 sd
_CHUNK_MINUTES = 1 << 16  # minutes generated per vectorized chunk
_TICK = 0.01  # price increment
# Crypto volumes are multiples of 2**-12 coin: binary fractions, so their sums are exact in any order
# (and aggregation cannot depend on numpy's summation order). Equity volumes are whole shares.
_CRYPTO_VOLUME_UNIT = 2.0**-12


@dataclass(frozen=True)
class _DailyPath:
    """The daily-level history of one symbol over the whole catalog span (read-only arrays)."""

    ordinals: np.ndarray  # int64 days since 1970-01-01 of every session
    open_log: np.ndarray  # float64 log open price of each session
    close_log: np.ndarray  # float64 log close price
    sigma: np.ndarray  # float64 GARCH sd of the session's close-to-open (intraday) log return
    volume_factor: np.ndarray  # float64 relative volume of the session (mean 1)


# ---------------------------------------------------------------------------------------------------
# Public API


def load_bars(symbol: str, timeframe: str, start: date, end: date) -> Bars:
    """Bars of `symbol` at `timeframe` for the days `start`..`end` (inclusive, calendar days).

    Equities: weekday sessions 09:30-16:00 America/New_York; crypto: 24/7 UTC days. Raises
    `UserInputError` for an unknown symbol or timeframe, reversed dates, dates outside
    `catalog.HISTORY_START`..`HISTORY_END`, or a range without any session (a weekend, for equities).
    """
    spec = _spec(symbol)
    if timeframe not in TIMEFRAMES:
        raise UserInputError(f"unknown timeframe {timeframe!r}; available: {', '.join(TIMEFRAMES)}")
    first, last = _session_range(spec, start, end)
    return _build(spec, timeframe, first, last)


def minute_bars(symbol: str, start: date, end: date) -> Bars:
    """The 1-minute history of `symbol` for the days `start`..`end` (inclusive)."""
    return load_bars(symbol, "1m", start, end)


def aggregate(bars: Bars, timeframe: str) -> Bars:
    """`bars` (1-minute, or any catalog timeframe that divides `timeframe`) aggregated to `timeframe`.

    Buckets: equity symbols of the catalog are anchored at 09:30 America/New_York; other symbols at UTC
    midnight if they trade on weekends (periods_per_year != 252), else at each UTC day's first bar (its
    session open). A bucket never spans two UTC days. A bar's time is its bucket's start.
    """
    if timeframe not in TIMEFRAMES:
        raise UserInputError(f"unknown timeframe {timeframe!r}; available: {', '.join(TIMEFRAMES)}")
    source = TIMEFRAMES.get(bars.timeframe)
    if source is None or TIMEFRAMES[timeframe] % source != 0:
        raise UserInputError(
            f"cannot aggregate {bars.timeframe!r} bars to {timeframe!r}: the source must be a catalog "
            f"timeframe ({', '.join(TIMEFRAMES)}) that divides the target"
        )
    columns: tuple[np.ndarray, ...] = (
        bars.times.view(np.int64),
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.volume,
    )
    if source != TIMEFRAMES[timeframe] and len(bars) > 0:
        columns = _aggregate_arrays(columns, timeframe, _anchor_rule(bars))
    return _make_bars(bars.symbol, timeframe, columns, bars.lot_size, bars.periods_per_year, bars.source)


def ny_session_open_utc(ordinals: np.ndarray) -> np.ndarray:
    """UTC offset (ns after midnight UTC) of 09:30 America/New_York on each day (days since 1970-01-01).

    US rules since 2007: daylight saving time from the second Sunday of March to the first Sunday of
    November, so 09:30 is 13:30 UTC in summer and 14:30 UTC in winter.
    """
    days = np.asarray(ordinals, dtype=np.int64).astype("datetime64[D]")
    months = days.astype("datetime64[Y]").astype("datetime64[M]")
    march1 = (months + 2).astype("datetime64[D]").astype(np.int64)
    nov1 = (months + 10).astype("datetime64[D]").astype(np.int64)
    dst_start = march1 + (6 - _weekday(march1)) % 7 + 7  # second Sunday of March
    dst_end = nov1 + (6 - _weekday(nov1)) % 7  # first Sunday of November
    d = days.astype(np.int64)
    summer = (d >= dst_start) & (d < dst_end)
    return np.where(summer, 13 * 60 + 30, 14 * 60 + 30).astype(np.int64) * MINUTE_NS


# ---------------------------------------------------------------------------------------------------
# Requests


def _spec(symbol: str) -> SymbolSpec:
    if not isinstance(symbol, str):
        raise UserInputError(f"symbol must be a string, got {type(symbol).__name__}")
    try:
        return symbol_spec(symbol)
    except KeyError:
        raise UserInputError(f"unknown symbol {symbol!r}; available: {', '.join(SYMBOLS)}") from None


def _as_date(value: object, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise UserInputError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None
    raise UserInputError(f"{name} must be a date (YYYY-MM-DD), got {type(value).__name__}")


def _session_range(spec: SymbolSpec, start: object, end: object) -> tuple[int, int]:
    """Indices [first, last) of the sessions of `spec` between `start` and `end` (inclusive)."""
    start_d, end_d = _as_date(start, "start date"), _as_date(end, "end date")
    if start_d > end_d:
        raise UserInputError(f"start date {start_d} is after end date {end_d}")
    if start_d < HISTORY_START or end_d > HISTORY_END:
        raise UserInputError(
            f"dates {start_d}..{end_d} are outside the available history {HISTORY_START}..{HISTORY_END}"
        )
    ordinals = _daily_path(spec.symbol).ordinals
    lo = int(np.searchsorted(ordinals, start_d.toordinal() - _EPOCH_ORDINAL, side="left"))
    hi = int(np.searchsorted(ordinals, end_d.toordinal() - _EPOCH_ORDINAL, side="right"))
    if hi <= lo:
        raise UserInputError(f"no {spec.symbol} session between {start_d} and {end_d}: equities trade on weekdays only")
    return lo, hi


# ---------------------------------------------------------------------------------------------------
# Seeds and random variates (raw bits in, IEEE-exact arithmetic only)


def _seed(*parts: object) -> int:
    key = "|".join([GENERATOR_VERSION, *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "little")


def _raw(seed: int, count: int) -> np.ndarray:
    return np.random.PCG64(seed).random_raw(count)


def _uniform(raw: np.ndarray) -> np.ndarray:
    """Uniforms in the open interval (0, 1) from raw 64-bit draws (52 bits each, exact)."""
    u = (raw >> np.uint64(12)).astype(np.float64)
    u += 0.5
    u *= 2.0**-52
    return u


def _candidates(n: int) -> int:
    """Candidate pairs for `n` accepted polar draws (acceptance pi/4) with a margin of > 11 sd."""
    return math.ceil((n / 0.785 + 12.0 * math.sqrt(n) + 16) / 16.0) * 16


def _student_t(u1: np.ndarray, u2: np.ndarray, n: int, dof: float) -> np.ndarray:
    """Standardized (unit-variance) Student-t variates by Bailey's polar method, row by row.

    `u1`, `u2`: (rows, candidates) uniforms; returns (rows, n): each row takes its first `n` accepted
    candidates. A row with too few (probability < 1e-25 by the margin of `_candidates`) repeats its
    accepted draws.
    """
    a = u1 * 2.0 - 1.0
    b = u2 * 2.0 - 1.0
    w = a * a + b * b
    ok = w < 1.0
    counts = ok.sum(axis=1)
    rank = np.cumsum(ok, axis=1)
    take = ok & (rank <= n)
    if np.all(counts >= n):
        a_sel, w_sel = a[take].reshape(-1, n), w[take].reshape(-1, n)
    else:
        a_sel, w_sel = np.empty((a.shape[0], n)), np.empty((a.shape[0], n))
        for row in range(a.shape[0]):
            a_sel[row] = np.resize(a[row][take[row]], n) if counts[row] else 0.0
            w_sel[row] = np.resize(w[row][take[row]], n) if counts[row] else 0.5
    # T = a * sqrt(dof * (w**(-2/dof) - 1) / w), then scaled to unit variance.
    t = pm.power(w_sel, -2.0 / dof)
    t -= 1.0
    t *= dof
    t /= w_sel
    np.sqrt(t, out=t)
    t *= a_sel
    t *= math.sqrt((dof - 2.0) / dof)
    return t


# ---------------------------------------------------------------------------------------------------
# Daily level


def _weekday(ordinals: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 of days since 1970-01-01 (a Thursday)."""
    return (np.asarray(ordinals, dtype=np.int64) + 3) % 7


def _session_ordinals(spec: SymbolSpec) -> np.ndarray:
    first = HISTORY_START.toordinal() - _EPOCH_ORDINAL
    last = HISTORY_END.toordinal() - _EPOCH_ORDINAL
    days = np.arange(first, last + 1, dtype=np.int64)
    return days[_weekday(days) < 5] if spec.calendar == "XNYS" else days


@cache
def _daily_path(symbol: str) -> _DailyPath:
    """The GARCH daily path of `symbol` over the whole history (a few thousand sessions, cached)."""
    spec = SYMBOLS[symbol]
    ordinals = _session_ordinals(spec)
    n = len(ordinals)
    equity = spec.calendar == "XNYS"
    shocks_per_day = 2 if equity else 1
    c = _candidates(n * shocks_per_day)
    u = _uniform(_raw(_seed(symbol, "daily"), 2 * c)).reshape(2, 1, c)
    z = np.clip(_student_t(u[0], u[1], n * shocks_per_day, spec.tail_dof)[0], -_DAILY_SHOCK_CLIP, _DAILY_SHOCK_CLIP)
    z_intra = z[:n].tolist()
    z_gap = z[n:].tolist() if equity else [0.0] * n

    # GARCH(1,1) on the close-to-close innovation, in plain IEEE double arithmetic.
    ppy = float(spec.periods_per_year)
    long_var = spec.annual_volatility * spec.annual_volatility / ppy
    omega = long_var * (1.0 - _GARCH_ALPHA - _GARCH_BETA)
    share = _OVERNIGHT_SHARE if equity else 0.0
    w_intra, w_gap = math.sqrt(1.0 - share), math.sqrt(share)
    var = long_var
    sig, e_intra, e_gap, eps = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    for k in range(n):
        s = math.sqrt(var)
        ei, eg = w_intra * s * z_intra[k], w_gap * s * z_gap[k]
        e = ei + eg
        sig[k], e_intra[k], e_gap[k], eps[k] = s, ei, eg, e
        var = omega + _GARCH_ALPHA * e * e + _GARCH_BETA * var

    # Calibrate: realized sd of daily innovations = the spec's, and their mean = 0 (so the mean daily
    # log return is the spec's drift). math.fsum is correctly rounded, so this is exact everywhere.
    mean = math.fsum(eps) / n
    realized_var = math.fsum((e - mean) * (e - mean) for e in eps) / (n - 1)
    scale = math.sqrt(long_var / realized_var)
    mu = spec.annual_drift / ppy
    open_log, close_log, sigma, factor = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    level = 0.0
    long_sd = math.sqrt(long_var)
    for k in range(n):
        gap = mu * share + scale * (e_gap[k] - share * mean) if equity else 0.0
        intra = mu * (1.0 - share) + scale * (e_intra[k] - (1.0 - share) * mean)
        open_log[k] = level + gap
        level = open_log[k] + intra
        close_log[k] = level
        sigma[k] = scale * w_intra * sig[k]
        move = min(abs(scale * (eps[k] - mean)) / long_sd, 8.0)
        factor[k] = 0.45 + 0.35 * (scale * sig[k] / long_sd) + 0.25 * move
    mean_factor = math.fsum(factor) / n

    anchor = int(np.searchsorted(ordinals, ANCHOR_DATE.toordinal() - _EPOCH_ORDINAL, side="right")) - 1
    shift = float(pm.log(spec.reference_price)) - close_log[anchor]
    arrays = (
        ordinals,
        np.array(open_log) + shift,
        np.array(close_log) + shift,
        np.array(sigma),
        np.array(factor) / mean_factor,
    )
    for a in arrays:
        a.setflags(write=False)
    return _DailyPath(*arrays)


# ---------------------------------------------------------------------------------------------------
# Minute level


@lru_cache(maxsize=4)
def _profiles(calendar: str, minutes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sd weight, cumulative variance share, volume weight) of each minute of a session.

    Equities: variance 1 + 3 (2x-1)^2 and volume 1 + 4 (2x-1)^2 over the session (x in 0..1), both
    U-shaped. Crypto: a mild hump peaking at 14:24 UTC. Polynomials only, so exact everywhere.
    """
    x = (np.arange(minutes, dtype=np.float64) + 0.5) / minutes
    if calendar == "XNYS":
        d = 2.0 * x - 1.0
        variance, volume = 1.0 + 3.0 * d * d, 1.0 + 4.0 * d * d
    else:
        d = (x - 0.6) / 0.25
        hump = np.maximum(1.0 - d * d, 0.0)
        variance, volume = 1.0 + 0.5 * hump, 1.0 + 0.8 * hump
    share = variance / math.fsum(variance.tolist())
    cumulative = np.cumsum(share)
    cumulative[-1] = 1.0
    volume = volume / (math.fsum(volume.tolist()) / minutes)
    out = (np.sqrt(share), cumulative, volume)
    for a in out:
        a.setflags(write=False)
    return out


def _minute_chunk(spec: SymbolSpec, path: _DailyPath, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """1-minute (times_ns, open, high, low, close, volume) of sessions lo..hi-1, flattened."""
    m = spec.minutes_per_day
    days = hi - lo
    c = _candidates(m)
    raw = np.empty((days, 2 * c + 3 * m), dtype=np.uint64)
    for row, k in enumerate(range(lo, hi)):
        day = date.fromordinal(int(path.ordinals[k]) + _EPOCH_ORDINAL)
        raw[row] = _raw(_seed(spec.symbol, day.isoformat()), raw.shape[1])
    u = _uniform(raw)
    del raw
    shocks = np.clip(_student_t(u[:, :c], u[:, c : 2 * c], m, spec.tail_dof), -_MINUTE_SHOCK_CLIP, _MINUTE_SHOCK_CLIP)
    u_high, u_low, u_vol = u[:, 2 * c : 2 * c + m], u[:, 2 * c + m : 2 * c + 2 * m], u[:, 2 * c + 2 * m :]

    sd_weight, cum_share, vol_weight = _profiles(spec.calendar, m)
    open_log, close_log = path.open_log[lo:hi, None], path.close_log[lo:hi, None]
    sd = path.sigma[lo:hi, None] * sd_weight  # sd of each minute's log return
    # Bridge: a random walk of the day's volatility, tied at the close to the day's close.
    walk = np.cumsum(shocks * sd, axis=1)
    miss = walk[:, -1:] - (close_log - open_log)
    walk -= cum_share * miss
    close = walk
    close += open_log
    close[:, -1:] = close_log
    opening = np.empty_like(close)
    opening[:, :1] = open_log
    opening[:, 1:] = close[:, :-1]
    # Extremes of a Brownian bridge from open to close: (o + c +- sqrt((c - o)^2 - 2 var ln U)) / 2.
    mid = opening + close
    span = close - opening
    span *= span
    var2 = sd * sd
    var2 *= -2.0
    high = pm.log(u_high)
    high *= var2
    high += span
    np.sqrt(high, out=high)
    low = pm.log(u_low)
    low *= var2
    low += span
    np.sqrt(low, out=low)
    high += mid
    high *= 0.5
    np.subtract(mid, low, out=low)
    low *= 0.5

    close_px = _to_price(pm.exp(close))
    open_px = np.empty_like(close_px)
    open_px[:, 1:] = close_px[:, :-1]
    open_px[:, :1] = _to_price(pm.exp(open_log))
    high_px = np.maximum(np.maximum(_to_price(pm.exp(high)), open_px), close_px)
    low_px = np.maximum(np.minimum(np.minimum(_to_price(pm.exp(low)), open_px), close_px), _TICK)

    # Volume: session profile x the day's activity x the size of the move x noise in [0.5, 1.5).
    move = np.minimum(np.abs(shocks), 6.0)
    move *= 0.6
    move += 0.55
    volume = u_vol + 0.5
    volume *= move
    volume *= vol_weight
    volume *= path.volume_factor[lo:hi, None] * (spec.daily_volume / m)
    unit = 1.0 if spec.calendar == "XNYS" else _CRYPTO_VOLUME_UNIT
    volume *= 1.0 / unit
    np.rint(volume, out=volume)
    volume *= unit
    np.maximum(volume, unit, out=volume)

    day_ns = path.ordinals[lo:hi, None] * DAY_NS
    if spec.calendar == "XNYS":
        day_ns = day_ns + ny_session_open_utc(path.ordinals[lo:hi])[:, None]
    times = day_ns + np.arange(m, dtype=np.int64) * MINUTE_NS
    return tuple(a.reshape(-1) for a in (times, open_px, high_px, low_px, close_px, volume))


def _to_price(x: np.ndarray) -> np.ndarray:
    """Round to the cent (never below one cent)."""
    x *= 1.0 / _TICK
    np.rint(x, out=x)
    x *= _TICK
    return np.maximum(x, _TICK, out=x)


def _build(spec: SymbolSpec, timeframe: str, first: int, last: int) -> Bars:
    path = _daily_path(spec.symbol)
    m = spec.minutes_per_day
    per_chunk = max(1, _CHUNK_MINUTES // m)
    anchor = "session" if spec.calendar == "XNYS" else "midnight"
    if timeframe == "1m":  # written chunk by chunk into the output, so the peak is the output plus a chunk
        total = (last - first) * m
        columns = (np.empty(total, dtype=np.int64), *(np.empty(total) for _ in range(5)))
    parts = []
    for lo in range(first, last, per_chunk):
        chunk = _minute_chunk(spec, path, lo, min(lo + per_chunk, last))
        if timeframe == "1m":
            at = (lo - first) * m
            for out, part in zip(columns, chunk, strict=True):
                out[at : at + len(part)] = part
        else:
            parts.append(_aggregate_arrays(chunk, timeframe, anchor))
    if timeframe != "1m":
        columns = tuple(np.concatenate([p[i] for p in parts]) for i in range(6))
    return _make_bars(spec.symbol, timeframe, columns, spec.lot_size, spec.periods_per_year, "synthetic")


# ---------------------------------------------------------------------------------------------------
# Aggregation


def _anchor_rule(bars: Bars) -> str:
    spec = SYMBOLS.get(bars.symbol.upper())
    if spec is not None:
        return "session" if spec.calendar == "XNYS" else "midnight"
    return "first" if bars.periods_per_year == 252 else "midnight"


def _aggregate_arrays(columns: tuple[np.ndarray, ...], timeframe: str, anchor: str) -> tuple[np.ndarray, ...]:
    """Aggregate sorted bars into `timeframe` buckets that never span two UTC days.

    `columns`: (times as int64 ns, open, high, low, close, volume). `anchor`: "session" (09:30
    America/New_York), "midnight" (UTC) or "first" (each day's first bar).
    """
    times, open_, high, low, close, volume = columns
    day = times // DAY_NS
    day_first = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    day_len = np.diff(np.append(day_first, len(times)))
    if anchor == "session":
        day_anchor = day[day_first] * DAY_NS + ny_session_open_utc(day[day_first])
    elif anchor == "first":
        day_anchor = times[day_first]
    else:
        day_anchor = day[day_first] * DAY_NS
    anchor_ns = np.repeat(day_anchor, day_len)
    if timeframe == "1d":
        starts = day_first
        labels = np.minimum(day_anchor, times[day_first])
    else:
        width = TIMEFRAMES[timeframe] * MINUTE_NS
        bucket = (times - anchor_ns) // width
        new = np.concatenate(([True], (day[1:] != day[:-1]) | (bucket[1:] != bucket[:-1])))
        starts = np.flatnonzero(new)
        labels = np.maximum(anchor_ns[starts] + bucket[starts] * width, day[starts] * DAY_NS)
    ends = np.append(starts[1:], len(times)) - 1
    return (
        labels,
        open_[starts],
        np.maximum.reduceat(high, starts),
        np.minimum.reduceat(low, starts),
        close[ends],
        np.add.reduceat(volume, starts),
    )


def _make_bars(
    symbol: str,
    timeframe: str,
    columns: tuple[np.ndarray, ...],
    lot_size: float,
    periods_per_year: int,
    source: str,
) -> Bars:
    times, open_, high, low, close, volume = columns
    return Bars(
        symbol=symbol,
        timeframe=timeframe,
        times=times.view("datetime64[ns]"),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        lot_size=lot_size,
        periods_per_year=periods_per_year,
        source=source,
    )
