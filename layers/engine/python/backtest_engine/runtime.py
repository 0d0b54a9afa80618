"""The strategy runtime: what a strategy sees, and what it decided.

Runs inside the sandbox's child process (`sandbox.child`), on the child's own copy of the bars. Two styles
(DESIGN.md):

- vectorized: ``generate_signals(data, params)`` returns a target exposure per bar;
- event-driven: ``initialize(ctx)`` once, then ``on_bar(ctx, bar)`` per bar, seeing only the past and
  the current bar: every series (`ctx.data.close`, each `ctx.indicator(...)`) is a `SeriesView` whose
  ``[-1]`` is the current bar and which refuses any later index.

`execute` returns only what the strategy decided (`Decisions`): the target exposure per bar, or the orders
placed, each with the bar whose open fills it. The trusted side runs the broker, the accounting and the
metrics on its own copy of the data from those decisions (`broker.simulate_target_fills`,
`broker.replay_orders`), so nothing the strategy does in here can change its fills or its result. In
event style the child keeps a broker of its own only to answer ``ctx.position`` / ``cash`` / ``equity``;
both brokers run the same code on the same bars, so they agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from backtest_engine.bars import Bars, loaded_pandas
from backtest_engine.broker import ORDER_KIND_CODES, Broker, Costs, Order
from backtest_engine.errors import EngineError, InvalidSignals, LookAheadError, StrategyError
from backtest_engine.sandbox import CompiledStrategy, StrategyLog, register_plain_type, translate_exception
from backtest_engine.sandbox.wire import MAX_ORDERS_PER_BAR, ORDER_DTYPE, max_orders

if TYPE_CHECKING:
    import pandas as pd

ProgressFn = Callable[[int, int], None]  # (bars done, bars total)
PROGRESS_EVERY = 1 << 10  # bars between two progress reports (a frame each: the runner rate-limits its writes)


@dataclass(frozen=True)
class Decisions:
    """What a strategy decided: `signals` (vectorized, one target exposure per bar) or `orders` (event style,
    `wire.ORDER_DTYPE` records in execution order)."""

    style: str
    signals: np.ndarray | None = None
    orders: np.ndarray | None = None


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
        import pandas as pd  # the strategy's library: loaded already where strategies run (the zygote)

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
        import pandas as pd

        return pd.Timestamp(self._bars.times[self._c.i]).tz_localize("UTC")

    @property
    def open(self) -> float:
        return self._bars.open[self._c.i]

    @property
    def high(self) -> float:
        return self._bars.high[self._c.i]

    @property
    def low(self) -> float:
        return self._bars.low[self._c.i]

    @property
    def close(self) -> float:
        return self._bars.close[self._c.i]

    @property
    def volume(self) -> float:
        return self._bars.volume[self._c.i]

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
        return self._clock.i

    @property
    def data(self) -> DataView:
        return self._data

    @property
    def position(self) -> float:
        """Units held: positive long, negative short, 0 flat."""
        return self._broker.position

    @property
    def cash(self) -> float:
        return self._broker.cash

    @property
    def equity(self) -> float:
        """Cash plus the position marked at the current bar's close."""
        i = max(self._clock.i, 0)
        return self._broker.cash + self._broker.position * float(self._bars.close[i])

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
        copies: list[np.ndarray] = []

        def copy_of(view: SeriesView) -> np.ndarray:
            copies.append(np.array(view._a, dtype=np.float64))
            return copies[-1]

        full = [copy_of(a) if isinstance(a, SeriesView) else a for a in args]
        out = fn(*full, **kwargs)
        n = len(self._bars)
        if isinstance(out, tuple):
            revealed: Any = tuple(self._reveal(o, n, f"{_name(fn)}[{k}]") for k, o in enumerate(out))
        else:
            revealed = self._reveal(out, n, _name(fn))
        # The function saw the whole history through copies: blank them, so a function that kept one (to
        # read later bars from on_bar) holds only NaN.
        for arr in copies:
            arr.fill(np.nan)
            arr.setflags(write=False)
        if not _is_talib(fn):
            self._check_causal(fn, args, kwargs, revealed, n)
        return revealed

    def _reveal(self, values: Any, n: int, name: str) -> SeriesView:
        pd = loaded_pandas()
        series = pd is not None and isinstance(values, pd.Series)
        arr = np.array(values.to_numpy() if series else values, dtype=np.float64)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise InvalidSignals(f"ctx.indicator({name}) returned shape {arr.shape}; expected one value per bar ({n})")
        arr.setflags(write=False)
        return SeriesView(arr, self._clock, name)

    def _check_causal(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, n: int
    ) -> None:
        outs = [o._a for o in (out if isinstance(out, tuple) else (out,))]

        def rerun(factors: np.ndarray) -> list[np.ndarray]:
            part = [_perturbed(a._a, factors) if isinstance(a, SeriesView) else a for a in args]
            res = fn(*part, **kwargs)
            return [np.asarray(r, dtype=np.float64) for r in (res if isinstance(res, tuple) else (res,))]

        k = _first_future_dependence(outs, self._bars.close, rerun)
        if k is not None:
            raise LookAheadError(
                f"ctx.indicator({_name(fn)}) reads future bars: its value at bar {k} changes when later bars change"
            )


_CONTEXT_READ_ONLY = frozenset({"i", "data", "position", "cash", "equity"})


@functools.cache
def _talib_functions() -> frozenset[int]:
    import talib

    return frozenset(id(getattr(talib, name)) for name in talib.get_functions())


def _is_talib(fn: Any) -> bool:
    """Whether `fn` is one of TA-Lib's own (causal) functions: by identity, not by what it says its module is."""
    return id(fn) in _talib_functions()


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
) -> Decisions:
    """Run `strategy` over `bars` and return what it decided. Every fault is raised as a typed `EngineError`:
    the strategy's own as a `StrategyFault` naming its line, anything else as a plain `EngineError`."""
    try:
        namespace = strategy.load(log)
        if strategy.style == "vectorized":
            signals = _run_vectorized(strategy, namespace, bars, params, log, check_lookahead)
            return Decisions(style="vectorized", signals=signals)
        orders = _run_event(namespace, bars, params, initial_capital, costs, log, progress)
        return Decisions(style="event", orders=orders)
    except EngineError:
        raise
    except BaseException as exc:
        raise translate_exception(exc) from None


def _run_event(
    namespace: dict[str, Any],
    bars: Bars,
    params: dict[str, Any],
    initial_capital: float,
    costs: Costs,
    log: StrategyLog,
    progress: ProgressFn | None,
) -> np.ndarray:
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
    most = max_orders(n)
    placed: list[tuple[int, int, float, float, float]] = []
    record = placed.append
    nan = math.nan
    for start in range(0, n, PROGRESS_EVERY):
        if progress is not None:
            progress(start, n)
        for i in range(start, min(start + PROGRESS_EVERY, n)):
            clock.i = i
            if pending:
                for order in pending:
                    broker.execute(order, i)
                    record(
                        (
                            i,
                            ORDER_KIND_CODES[order.kind],
                            order.value,
                            nan if order.sl is None else order.sl,
                            nan if order.tp is None else order.tp,
                        )
                    )
                pending.clear()
                if len(placed) > most:
                    raise StrategyError(
                        f"the strategy placed more than {most} orders ({MAX_ORDERS_PER_BAR} per bar on "
                        "average); place an order only when the position should change"
                    )
            if broker.sl is not None or broker.tp is not None:
                broker.check_stops(i, opens[i], highs[i], lows[i])
            on_bar(ctx, bar)
    return np.array(placed, dtype=ORDER_DTYPE)


def _run_vectorized(
    strategy: CompiledStrategy,
    namespace: dict[str, Any],
    bars: Bars,
    params: dict[str, Any],
    log: StrategyLog,
    check_lookahead: bool,
) -> np.ndarray:
    generate = namespace["generate_signals"]
    n = len(bars)
    signals = coerce_signals(generate(bars.to_frame(copy=True), dict(params)), n)
    if check_lookahead:

        def rerun(factors: np.ndarray) -> list[np.ndarray]:
            # A fresh module (no state kept from the first call) and a log that is thrown away.
            again = strategy.load(StrategyLog(log.max_lines, log.max_bytes))["generate_signals"]
            variant = _perturbed_bars(bars, factors)
            return [coerce_signals(again(variant.to_frame(copy=True), dict(params)), factors.shape[0])]

        k = _first_future_dependence([signals], bars.close, rerun)
        if k is not None:
            raise LookAheadError(
                f"generate_signals reads future bars: its signal for bar {k} ({_iso(bars.times[k])}) changes when "
                "later bars change (signals must depend only on past and current bars, and must be deterministic)"
            )
    return signals


# ---- look-ahead detection ---------------------------------------------------------------------
# A causal series' value at bar t depends only on bars ≤ t. To test it, the computation runs once more on
# the bars up to `stop` with every bar from `cut` on scaled, alternately, by 10 and by 0.1 — the first of them
# in the direction that reverses the move from bar cut-1 to bar cut — and the values before `cut` must not
# move. A peek at a later bar (a shift, a centred window, a full-sample maximum, minimum or mean) moves them.
# One re-run, in a fresh module and with its prints thrown away, over about an eighth of the bars (plus
# `LOOKAHEAD_TAIL`) keeps the check's cost near 13% of a run. It is a check for honest mistakes: a strategy
# written to fool it (one that detects the scaling and undoes it, or acts differently on a shorter history)
# can.
LOOKAHEAD_FACTORS = (10.0, 0.1)
LOOKAHEAD_TAIL = 512  # bars after the cut kept in the re-run
LOOKAHEAD_MIN_CUT = 2048  # compare at least this many bars (or half of a shorter run)


def lookahead_factors(close: np.ndarray, cut: int, stop: int) -> np.ndarray:
    """The factor each bar of the re-run is scaled by: 1 before `cut`, then alternately 10 and 0.1 starting
    with the one that turns the move into bar `cut` the other way."""
    up = bool(close[cut] >= close[cut - 1])
    first, second = (LOOKAHEAD_FACTORS[1], LOOKAHEAD_FACTORS[0]) if up else LOOKAHEAD_FACTORS
    factors = np.ones(stop)
    factors[cut::2] = first
    factors[cut + 1 :: 2] = second
    return factors


def _perturbed(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.asarray(values[: factors.shape[0]], dtype=np.float64) * factors


def _perturbed_bars(bars: Bars, factors: np.ndarray) -> Bars:
    p = bars.slice(0, factors.shape[0])

    def f(values: np.ndarray) -> np.ndarray:
        return _perturbed(values, factors)

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


def lookahead_cut(n: int) -> int:
    """The first perturbed bar of the look-ahead re-run over `n` bars."""
    return max(n // 8, min(n // 2, LOOKAHEAD_MIN_CUT))


def _first_future_dependence(
    base: list[np.ndarray], close: np.ndarray, rerun: Callable[[np.ndarray], list[np.ndarray]]
) -> int | None:
    """The first bar whose value changed when only later bars changed, or None (also when the re-run itself
    failed: then nothing can be concluded)."""
    n = close.shape[0]
    cut = lookahead_cut(n)
    if cut < 2:
        return None
    stop = min(n, cut + LOOKAHEAD_TAIL)
    try:
        again = rerun(lookahead_factors(close, cut, stop))
    except MemoryError:
        raise
    except Exception:
        return None
    for full, other in zip(base, again, strict=False):
        a, b = full[:cut], other[:cut]
        if a.shape != b.shape:
            continue
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            return int(np.flatnonzero(~same)[0])
    return None


def coerce_signals(out: Any, n: int) -> np.ndarray:
    """The strategy's signals as float64 exposures in [-1, 1] (NaN allowed), or `InvalidSignals`."""
    pd = loaded_pandas()
    if pd is not None and isinstance(out, pd.DataFrame):
        raise InvalidSignals("generate_signals returned a DataFrame; return one value per bar (a Series or array)")
    if pd is not None and isinstance(out, pd.Series):
        out = out.to_numpy()
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
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
