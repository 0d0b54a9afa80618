"""The strategy runtime: what a strategy sees and how each style is driven through the broker.

Runs inside the sandbox's child process (see `engine.run_backtest`). Two styles (DESIGN.md):

- vectorized: ``generate_signals(data, params)`` returns a target exposure per bar;
- event-driven: ``initialize(ctx)`` once, then ``on_bar(ctx, bar)`` per bar, seeing only the past and
  the current bar: every series (`ctx.data.close`, each `ctx.indicator(...)`) is a `SeriesView` whose
  ``[-1]`` is the current bar and which refuses any later index.

Both styles place orders that fill at the next bar's open through the same `Broker`, so the same
logic gives the same trades and equity in either style.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from backtest_engine.bars import Bars
from backtest_engine.broker import Broker, Costs, Fills, Order, simulate_target_fills
from backtest_engine.errors import EngineError, InvalidSignals, LookAheadError
from backtest_engine.sandbox import CompiledStrategy, StrategyLog, register_plain_type, translate_exception

ProgressFn = Callable[[float], None]
PROGRESS_EVERY = 1 << 16  # bars between two progress reports


@dataclass(frozen=True)
class ExecutionRecord:
    """What the child process sends back: the broker's fills and trades, and what the strategy logged."""

    fills: Fills
    logs: list[str]
    style: str


class _Clock:
    __slots__ = ("i",)

    def __init__(self) -> None:
        self.i = -1


class SeriesView:
    """A series revealed bar by bar: ``[-1]`` is the current bar, ``[-2]`` the one before; a
    non-negative index counts from the first bar; slices cover only the bars seen so far.
    ``.values`` (and ``np.asarray(view)``) is the read-only array of the bars seen so far."""

    __slots__ = ("_a", "_c", "_name")

    def __init__(self, array: np.ndarray, clock: _Clock, name: str = "series") -> None:
        self._a = array
        self._c = clock
        self._name = name

    def __getitem__(self, key: Any) -> Any:
        i = self._c.i
        if type(key) is int:
            if key < 0:
                j = i + 1 + key
                if j < 0:
                    raise IndexError(f"{self._name}[{key}]: only {i + 1} bar(s) seen so far")
                return self._a[j]
            if key > i:
                raise IndexError(f"{self._name}[{key}] is in the future: the current bar is {i}")
            return self._a[key]
        if isinstance(key, slice):
            return self._a[: i + 1][key]
        raise TypeError(f"{self._name} index must be an int or a slice, not {type(key).__name__}")

    def __len__(self) -> int:
        return self._c.i + 1

    @property
    def values(self) -> np.ndarray:
        return self._a[: self._c.i + 1]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = self._a[: self._c.i + 1]
        return v if dtype is None else v.astype(dtype)

    def __iter__(self) -> Any:
        return iter(self._a[: self._c.i + 1])

    def __repr__(self) -> str:
        return f"<{self._name}: {len(self)} bar(s) seen>"


class DataView:
    """``ctx.data``: the bars so far, one `SeriesView` per column."""

    __slots__ = ("_c", "_times", "close", "high", "low", "open", "volume")

    def __init__(self, bars: Bars, clock: _Clock) -> None:
        self._c = clock
        self._times = bars.times
        self.open = SeriesView(bars.open, clock, "data.open")
        self.high = SeriesView(bars.high, clock, "data.high")
        self.low = SeriesView(bars.low, clock, "data.low")
        self.close = SeriesView(bars.close, clock, "data.close")
        self.volume = SeriesView(bars.volume, clock, "data.volume")

    @property
    def time(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self._times[: self._c.i + 1]).tz_localize("UTC")

    def __len__(self) -> int:
        return self._c.i + 1


class Bar:
    """``bar`` in ``on_bar(ctx, bar)``: the current bar's time, open, high, low, close and volume."""

    __slots__ = ("_bars", "_c")

    def __init__(self, bars: Bars, clock: _Clock) -> None:
        self._bars = bars
        self._c = clock

    @property
    def time(self) -> pd.Timestamp:
        return pd.Timestamp(self._bars.times[self._c.i]).tz_localize("UTC")

    @property
    def open(self) -> float:
        return self._bars.open[self._c.i]  # type: ignore[no-any-return]

    @property
    def high(self) -> float:
        return self._bars.high[self._c.i]  # type: ignore[no-any-return]

    @property
    def low(self) -> float:
        return self._bars.low[self._c.i]  # type: ignore[no-any-return]

    @property
    def close(self) -> float:
        return self._bars.close[self._c.i]  # type: ignore[no-any-return]

    @property
    def volume(self) -> float:
        return self._bars.volume[self._c.i]  # type: ignore[no-any-return]

    @property
    def index(self) -> int:
        return self._c.i


def _check_price(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive price, got {value}")
    return value


class Context:
    """``ctx``: orders, account state, parameters, indicators, a state dict and a log.

    Orders placed on a bar fill at the next bar's open. ``buy()`` / ``sell()`` without ``size`` go
    all-in long / short (target exposure +1 / −1); ``size`` in (0, 1) is a fraction of equity, ``size``
    ≥ 1 a number of units. ``target(x)`` holds x × equity (−1 ≤ x ≤ 1) and does nothing when x is the
    target already held or pending. ``sl`` / ``tp`` are stop-loss / take-profit prices for the
    resulting position; ``set_stops(sl, tp)`` moves them for the position held (from the next bar).
    Any other attribute may be set freely (``ctx.fast = ctx.indicator(...)``).
    """

    _bars: Bars
    _clock: _Clock
    _broker: Broker
    _log: StrategyLog
    _pending: list[Order]
    _data: DataView

    def __init__(self, bars: Bars, clock: _Clock, broker: Broker, params: dict[str, Any], log: StrategyLog) -> None:
        object.__setattr__(self, "_bars", bars)
        object.__setattr__(self, "_clock", clock)
        object.__setattr__(self, "_broker", broker)
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_pending", [])
        object.__setattr__(self, "_data", DataView(bars, clock))
        self.params = dict(params)
        self.state: dict[str, Any] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CONTEXT_READ_ONLY:
            raise AttributeError(f"ctx.{name} is read-only")
        object.__setattr__(self, name, value)

    # ---- account -------------------------------------------------------------------------------
    @property
    def i(self) -> int:
        """Index of the current bar (0-based)."""
        return self._clock.i  # type: ignore[no-any-return]

    @property
    def data(self) -> DataView:
        return self._data  # type: ignore[no-any-return]

    @property
    def position(self) -> float:
        """Units held: positive long, negative short, 0 flat."""
        return self._broker.position  # type: ignore[no-any-return]

    @property
    def cash(self) -> float:
        return self._broker.cash  # type: ignore[no-any-return]

    @property
    def equity(self) -> float:
        """Cash plus the position marked at the current bar's close."""
        i = max(self._clock.i, 0)
        return self._broker.cash + self._broker.position * float(self._bars.close[i])  # type: ignore[no-any-return]

    # ---- orders --------------------------------------------------------------------------------
    def buy(self, size: float | None = None, sl: float | None = None, tp: float | None = None) -> None:
        if size is None and sl is None and tp is None and not self._pending and self._broker.last_target == 1.0:
            return  # the all-in long target is held and nothing is pending: what target(1.0) concludes
        self._order(1.0, size, sl, tp)

    def sell(self, size: float | None = None, sl: float | None = None, tp: float | None = None) -> None:
        self._order(-1.0, size, sl, tp)

    def close(self) -> None:
        """Close the position at the next bar's open."""
        if not self._pending and self._broker.last_target == 0.0:
            return  # flat is the target held and nothing is pending: what target(0.0) concludes
        self.target(0.0)

    def target(self, exposure: float, sl: float | None = None, tp: float | None = None) -> None:
        exposure = float(exposure)
        if not -1.0 <= exposure <= 1.0:
            raise ValueError(f"target exposure must lie in [-1, 1], got {exposure}")
        pending: list[Order] = self._pending
        if pending:
            current = next((o.value for o in reversed(pending) if o.kind == "target"), None)
            if current is None and not any(o.kind in ("units", "fraction") for o in pending):
                current = self._broker.last_target
        else:
            current = self._broker.last_target
        if current == exposure:
            return
        pending.append(Order("target", exposure, _check_price("sl", sl), _check_price("tp", tp)))

    def set_stops(self, sl: float | None = None, tp: float | None = None) -> None:
        """Move the stop-loss / take-profit of the position held; they apply from the next bar."""
        self._pending.append(Order("stops", 0.0, _check_price("sl", sl), _check_price("tp", tp)))

    def _order(self, direction: float, size: float | None, sl: float | None, tp: float | None) -> None:
        if size is None:
            self.target(direction, sl, tp)
            return
        size = float(size)
        if not math.isfinite(size) or size <= 0:
            raise ValueError(f"size must be a positive number (a fraction < 1 of equity, or units ≥ 1), got {size}")
        kind: Literal["fraction", "units"] = "fraction" if size < 1.0 else "units"
        self._pending.append(Order(kind, direction * size, _check_price("sl", sl), _check_price("tp", tp)))

    # ---- tools ---------------------------------------------------------------------------------
    def log(self, *args: Any) -> None:
        self._log.write(" ".join(str(a) for a in args))

    def indicator(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Compute ``fn`` once over the whole history and reveal it bar by bar.

        Series arguments (``ctx.data.close``, another indicator) are passed whole. The result (an array,
        or a tuple of arrays such as ``talib.BBANDS``'s) must have one value per bar. A function that
        is not TA-Lib's is checked for look-ahead: its values over the first half of the bars must not
        change when the second half is left out.
        """
        full = [a._a if isinstance(a, SeriesView) else a for a in args]
        out = fn(*full, **kwargs)
        n = len(self._bars)
        if not str(getattr(fn, "__module__", "") or "").startswith("talib"):
            self._check_causal(fn, args, kwargs, out, n)
        if isinstance(out, tuple):
            return tuple(self._reveal(o, n, f"{_name(fn)}[{k}]") for k, o in enumerate(out))
        return self._reveal(out, n, _name(fn))

    def _reveal(self, values: Any, n: int, name: str) -> SeriesView:
        arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values, dtype=np.float64)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise InvalidSignals(f"ctx.indicator({name}) returned shape {arr.shape}; expected one value per bar ({n})")
        arr.setflags(write=False)
        return SeriesView(arr, self._clock, name)

    def _check_causal(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, n: int
    ) -> None:
        outs = [np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, tuple) else (out,))]

        def rerun(cut: int, stop: int, factor: float) -> list[np.ndarray]:
            part = [_perturbed(a._a, cut, stop, factor) if isinstance(a, SeriesView) else a for a in args]
            res = fn(*part, **kwargs)
            return [np.asarray(r, dtype=np.float64) for r in (res if isinstance(res, tuple) else (res,))]

        k = _first_future_dependence(outs, n, rerun)
        if k is not None:
            raise LookAheadError(
                f"ctx.indicator({_name(fn)}) reads future bars: its value at bar {k} changes when later bars change"
            )


_CONTEXT_READ_ONLY = frozenset({"i", "data", "position", "cash", "equity"})


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", type(fn).__name__))


for _cls in (SeriesView, DataView, Bar, Context):
    register_plain_type(_cls)


# ---- the two styles ------------------------------------------------------------------------------


def execute(
    strategy: CompiledStrategy,
    bars: Bars,
    params: dict[str, Any],
    initial_capital: float,
    costs: Costs,
    log: StrategyLog,
    *,
    check_lookahead: bool = True,
    progress: ProgressFn | None = None,
) -> ExecutionRecord:
    """Run `strategy` over `bars`. User faults are raised as typed `EngineError`s."""
    try:
        namespace = strategy.load(log)
        if strategy.style == "vectorized":
            fills = _run_vectorized(namespace, bars, params, initial_capital, costs, check_lookahead)
        else:
            fills = _run_event(namespace, bars, params, initial_capital, costs, log, progress)
    except EngineError:
        raise
    except BaseException as exc:
        if not _from_strategy(exc) and not isinstance(exc, MemoryError | RecursionError):
            raise  # an engine fault, not the strategy's: let it surface as one
        raise translate_exception(exc) from None
    return ExecutionRecord(fills=fills, logs=list(log.lines), style=strategy.style)


def _from_strategy(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<strategy>":
            return True
        tb = tb.tb_next
    return False


def _run_event(
    namespace: dict[str, Any],
    bars: Bars,
    params: dict[str, Any],
    initial_capital: float,
    costs: Costs,
    log: StrategyLog,
    progress: ProgressFn | None,
) -> Fills:
    clock = _Clock()
    broker = Broker(initial_capital, costs, bars.open, bars.close)
    ctx = Context(bars, clock, broker, params, log)
    bar = Bar(bars, clock)
    initialize = namespace.get("initialize")
    on_bar = namespace["on_bar"]
    if initialize is not None:
        initialize(ctx)
    pending: list[Order] = ctx._pending
    opens, highs, lows = bars.open, bars.high, bars.low
    n = len(bars)
    for start in range(0, n, PROGRESS_EVERY):
        if progress is not None:
            progress(start / n)
        for i in range(start, min(start + PROGRESS_EVERY, n)):
            clock.i = i
            if pending:
                for order in pending:
                    broker.execute(order, i)
                pending.clear()
            if broker.sl is not None or broker.tp is not None:
                broker.check_stops(i, opens[i], highs[i], lows[i])
            on_bar(ctx, bar)
    return broker.fills()


def _run_vectorized(
    namespace: dict[str, Any],
    bars: Bars,
    params: dict[str, Any],
    initial_capital: float,
    costs: Costs,
    check_lookahead: bool,
) -> Fills:
    generate = namespace["generate_signals"]
    n = len(bars)
    signals = coerce_signals(generate(bars.to_frame(), dict(params)), n)
    if check_lookahead:

        def rerun(cut: int, stop: int, factor: float) -> list[np.ndarray]:
            variant = _perturbed_bars(bars, cut, stop, factor)
            return [coerce_signals(generate(variant.to_frame(), dict(params)), stop)]

        k = _first_future_dependence([signals], n, rerun)
        if k is not None:
            raise LookAheadError(
                f"generate_signals reads future bars: its signal for bar {k} ({_iso(bars.times[k])}) changes when "
                "later bars change (signals must depend only on past and current bars, and must be deterministic)"
            )
    return simulate_target_fills(signals, bars.open, bars.close, initial_capital, costs)


# ---- look-ahead detection ---------------------------------------------------------------------
# A causal series' value at bar t depends only on bars ≤ t. To test it, the computation is run again on
# the bars up to `stop` with every bar from `cut` on scaled by 10 and by 0.1: the values before `cut`
# must not move. A peek at any later bar (a shift, a centred window, a full-sample statistic) moves them.
LOOKAHEAD_FACTORS = (10.0, 0.1)
LOOKAHEAD_TAIL = 512  # bars after the cut kept in the re-runs (they cost about a quarter of a run each)


def _perturbed(values: np.ndarray, cut: int, stop: int, factor: float) -> np.ndarray:
    out = np.array(values[:stop], dtype=np.float64)
    out[cut:] *= factor
    return out


def _perturbed_bars(bars: Bars, cut: int, stop: int, factor: float) -> Bars:
    p = bars.slice(0, stop)

    def f(values: np.ndarray) -> np.ndarray:
        return _perturbed(values, cut, stop, factor)

    return Bars(
        p.symbol,
        p.timeframe,
        p.times,
        f(p.open),
        f(p.high),
        f(p.low),
        f(p.close),
        f(p.volume),
        p.lot_size,
        p.periods_per_year,
    )


def _first_future_dependence(
    base: list[np.ndarray], n: int, rerun: Callable[[int, int, float], list[np.ndarray]]
) -> int | None:
    """The first bar whose value changed when only later bars changed, or None."""
    cut = n // 4
    if cut < 2:
        return None
    stop = min(n, cut + LOOKAHEAD_TAIL)
    for factor in LOOKAHEAD_FACTORS:
        for full, again in zip(base, rerun(cut, stop, factor), strict=False):
            a, b = full[:cut], again[:cut]
            if a.shape != b.shape:
                continue
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                return int(np.flatnonzero(~same)[0])
    return None


def coerce_signals(out: Any, n: int) -> np.ndarray:
    """The strategy's signals as float64 exposures in [-1, 1] (NaN allowed), or `InvalidSignals`."""
    if isinstance(out, pd.DataFrame):
        raise InvalidSignals("generate_signals returned a DataFrame; return one value per bar (a Series or array)")
    if isinstance(out, pd.Series):
        out = out.to_numpy()
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSignals(
            f"generate_signals must return numbers (an array or Series of exposures), got {type(out).__name__}: {exc}"
        ) from None
    if arr.ndim != 1:
        raise InvalidSignals(f"generate_signals returned shape {arr.shape}; expected a 1-D series of {n} values")
    if arr.shape[0] != n:
        raise InvalidSignals(f"generate_signals returned {arr.shape[0]} values for {n} bars; return one per bar")
    # The largest and smallest value ignoring NaN (fmax/fmin skip NaN; ±inf count): no per-bar temporaries.
    if arr.shape[0] and (np.fmax.reduce(arr) > 1.0 or np.fmin.reduce(arr) < -1.0):
        k = int(np.flatnonzero(np.abs(arr) > 1.0)[0])  # NaN compares False
        raise InvalidSignals(
            f"signal {float(arr[k])!r} at bar {k} is out of range: exposures lie in [-1, 1] "
            "(1 long, 0 flat, -1 short; NaN keeps the previous)"
        )
    return arr


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="s")) + "Z"
