"""The broker: fills, costs, positions, cash and trades. Both strategy styles trade through it.

Fill rules (DESIGN.md "Fills and accounting"):

- A market order decided on bar t's close fills at bar t+1's open, moved against the trader by
  `slippage` (a buy pays ``open × (1 + slippage)``, a sell gets ``open × (1 − slippage)``).
- `commission` is charged on every fill's notional: ``|units| × fill price × commission``.
- A target exposure x (−1 ≤ x ≤ 1) becomes ``sign(x) × floor_lot(|x| × equity / (fill price × (1 + commission)))``
  units, equity being cash + position marked at the fill bar's open. The buy-side and sell-side
  fill prices give two candidate sizes; the order buys up to the first or sells down to the second,
  and does nothing when the position already lies between them.
- `size=` orders: ``0 < size < 1`` is a fraction of equity, ``size ≥ 1`` a number of units; both are
  rounded down to the lot and capped so the position never exceeds what equity buys (no leverage).
- Stop-loss and take-profit are prices attached to the open position. On each bar, from the bar its
  entry filled on: a gap through the stop fills at the open (with slippage), a gap through the target
  at the open; otherwise a stop touched by the low (long) or high (short) fills at the stop price with
  slippage, and a target touched by the high (long) or low (short) fills at the target price (a limit
  order: no slippage). When both could trigger in one bar, the stop counts first.
- Equity is marked at every bar's close. A position still open after the last bar is closed at the
  last close (commission charged, no slippage) and its trade is flagged as closed by the end of data.
- A trade runs from the fill that opens a position to the fill that brings it back to zero; a fill that
  flips the position is split into a closing part and an opening part (commission split pro rata).
  A trade's pnl is its net cash flow: every sale's proceeds minus every purchase's cost, commissions
  included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from backtest_engine.metrics import TradeRecords

OrderKind = Literal["target", "units", "fraction", "stops"]
ORDER_KINDS: tuple[OrderKind, ...] = ("target", "units", "fraction", "stops")
ORDER_KIND_CODES: dict[str, int] = {kind: code for code, kind in enumerate(ORDER_KINDS)}
ExitReason = Literal["signal", "stop_loss", "take_profit", "end_of_data"]
EXIT_REASONS: tuple[ExitReason, ...] = ("signal", "stop_loss", "take_profit", "end_of_data")
_REASON_CODE = {reason: code for code, reason in enumerate(EXIT_REASONS)}


class Columns:
    """Append-only numeric columns kept as numpy: rows gather in short Python lists that are moved into
    numpy chunks every `CHUNK` rows, so a run with millions of fills or trades never holds a Python
    object per row (what made the runner's memory grow with the trade count)."""

    CHUNK = 1 << 15

    __slots__ = ("_chunks", "_dtypes", "_rows", "names")

    def __init__(self, dtypes: dict[str, str]) -> None:
        self.names = tuple(dtypes)
        self._dtypes = dtypes
        self._rows: dict[str, list[float]] = {name: [] for name in dtypes}
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}

    def lists(self) -> dict[str, list[float]]:
        """The open lists to append one value per column to; call `flush_if_full` after each row."""
        return self._rows

    def flush_if_full(self) -> None:
        if len(self._rows[self.names[0]]) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        for name, values in self._rows.items():
            if values:
                self._chunks[name].append(np.asarray(values, dtype=self._dtypes[name]))
                values.clear()

    def arrays(self) -> dict[str, np.ndarray]:
        self._flush()
        return {
            name: np.concatenate(chunks) if chunks else np.empty(0, dtype=self._dtypes[name])
            for name, chunks in self._chunks.items()
        }


_TRADE_COLUMNS = {
    "entry_bar": "int64",
    "exit_bar": "int64",
    "side": "int8",
    "size": "float64",
    "entry_price": "float64",
    "exit_price": "float64",
    "pnl": "float64",
    "return_pct": "float64",
    "commission": "float64",
    "closed_by_end": "bool",
    "reason": "int8",
}
_FILL_COLUMNS = {"bar": "int64", "position": "float64", "cash": "float64"}


@dataclass(frozen=True, slots=True)
class Costs:
    commission: float
    slippage: float
    lot_size: float

    def round_to_lot(self, units: float) -> float:
        """`units` (≥ 0) rounded down to a whole number of lots."""
        lots = math.floor(units / self.lot_size + 1e-9)
        return lots * self.lot_size if lots > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Order:
    """An order waiting for the next bar's open. kind: "target" (value = exposure), "units"
    (value = signed units), "fraction" (value = signed fraction of equity) or "stops" (move the
    position's stop-loss / take-profit; value unused)."""

    kind: OrderKind
    value: float
    sl: float | None = None
    tp: float | None = None


@dataclass(frozen=True)
class Ledger:
    """What a finished simulation hands to the metrics: per-bar equity and position, and the trades."""

    equity: np.ndarray
    position: np.ndarray
    trades: TradeRecords
    exit_reasons: np.ndarray  # int8 codes into EXIT_REASONS, one per trade
    total_commission: float
    fills: int


@dataclass(frozen=True)
class Fills:
    """A finished simulation, compact: the position and cash after each fill (they are step functions
    of the bar) and the trades. What the sandbox child sends back: a few arrays of one entry per fill or
    trade instead of two per bar; `ledger(close)` expands it in the parent."""

    bar: np.ndarray  # int64, non-decreasing: the bar of each fill
    position: np.ndarray  # float64 units held after each fill
    cash: np.ndarray  # float64 cash after each fill
    initial_capital: float
    bars: int
    trades: TradeRecords
    exit_reasons: np.ndarray  # int8 codes into EXIT_REASONS, one per trade
    total_commission: float

    def ledger(self, close: np.ndarray) -> Ledger:
        """Per-bar position, cash and equity (marked at `close`): each fill's values hold from its bar until
        the next fill's; of several fills on one bar, the last one counts."""
        if close.shape[0] != self.bars:
            raise ValueError(f"close has {close.shape[0]} bars; the simulation ran over {self.bars}")
        runs = np.diff(np.concatenate(([0], self.bar, [self.bars])))
        position = np.repeat(np.concatenate(([0.0], self.position)), runs)
        cash = np.repeat(np.concatenate(([self.initial_capital], self.cash)), runs)
        equity = position * close
        equity += cash  # == cash + position × close, bit for bit
        return Ledger(
            equity=equity,
            position=position,
            trades=self.trades,
            exit_reasons=self.exit_reasons,
            total_commission=self.total_commission,
            fills=int(self.bar.shape[0]),
        )


class Broker:
    """Cash, position, stops and trade bookkeeping for one backtest over `close.shape[0]` bars."""

    def __init__(self, initial_capital: float, costs: Costs, open_: np.ndarray, close: np.ndarray) -> None:
        self.initial_capital = float(initial_capital)
        self.cash = float(initial_capital)
        self.position = 0.0
        self.costs = costs
        self.sl: float | None = None
        self.tp: float | None = None
        self.last_target: float | None = 0.0  # the exposure the position was last set to (None: set by units)
        self.total_commission = 0.0
        self._open = open_
        self._close = close
        self._eps = costs.lot_size * 1e-6
        # Fills as step changes: after the fill on bar fill_bar[k], the position and cash were ...
        self._fills = Columns(_FILL_COLUMNS)
        fill_lists = self._fills.lists()
        self._fill_bar, self._fill_pos, self._fill_cash = fill_lists["bar"], fill_lists["position"], fill_lists["cash"]
        # The open trade.
        self._side = 0
        self._entry_bar = 0
        self._flow = 0.0
        self._in_units = self._in_value = self._out_units = self._out_value = 0.0
        self._max_size = 0.0
        self._trade_commission = 0.0
        # Closed trades, column by column.
        self._trade_columns = Columns(_TRADE_COLUMNS)
        self._trades = self._trade_columns.lists()

    # ---- orders -------------------------------------------------------------------------------

    def equity_at(self, price: float) -> float:
        return self.cash + self.position * price

    def execute(self, order: Order, bar: int) -> None:
        """Fill `order` at bar `bar`'s open."""
        if order.kind == "stops":
            if self.position != 0.0:
                self.sl, self.tp = order.sl, order.tp
            return
        price = float(self._open[bar])
        if order.kind == "target":
            self.to_target(order.value, bar, price)
        else:
            self._by_size(order, bar, price)
        if self.position != 0.0 and (order.sl is not None or order.tp is not None):
            self.sl, self.tp = order.sl, order.tp

    def to_target(self, exposure: float, bar: int, price: float) -> None:
        """Trade at `price` (unslipped open) to hold `exposure` × equity."""
        costs, pos, eps = self.costs, self.position, self._eps
        self.last_target = exposure
        equity = self.cash + pos * price
        if equity <= 0.0 or exposure == 0.0:  # flat: both candidate sizes are 0
            if pos < -eps:
                self.fill(-pos, price * (1.0 + costs.slippage), bar, "signal")
            elif pos > eps:
                self.fill(-pos, price * (1.0 - costs.slippage), bar, "signal")
            return
        c, s, lot = costs.commission, costs.slippage, costs.lot_size
        buy_price, sell_price = price * (1.0 + s), price * (1.0 - s)
        value = abs(exposure) * equity
        # sign × Costs.round_to_lot(value / (fill price × (1 + c))), inlined: this runs once per order.
        lots = math.floor(value / (buy_price * (1.0 + c)) / lot + 1e-9)
        want_buy = lots * lot if lots > 0 else 0.0
        if exposure < 0:
            want_buy = -want_buy
        if want_buy > pos + eps:
            self.fill(want_buy - pos, buy_price, bar, "signal")
            return
        lots = math.floor(value / (sell_price * (1.0 + c)) / lot + 1e-9)
        want_sell = lots * lot if lots > 0 else 0.0
        if exposure < 0:
            want_sell = -want_sell
        if want_sell < pos - eps:
            self.fill(want_sell - pos, sell_price, bar, "signal")

    def _by_size(self, order: Order, bar: int, price: float) -> None:
        c, s = self.costs.commission, self.costs.slippage
        fill_price = price * (1.0 + s) if order.value > 0 else price * (1.0 - s)
        equity = self.cash + self.position * price
        if order.kind == "fraction":
            units = self.costs.round_to_lot(abs(order.value) * max(equity, 0.0) / (fill_price * (1.0 + c)))
        else:
            units = self.costs.round_to_lot(abs(order.value))
        # No leverage: the resulting position may not exceed what equity buys.
        cap = self.costs.round_to_lot(max(equity, 0.0) / (fill_price * (1.0 + c)))
        new_pos = self.position + math.copysign(units, order.value)
        new_pos = max(-cap, min(cap, new_pos)) if abs(new_pos) > abs(self.position) else new_pos
        self.last_target = None
        if abs(new_pos - self.position) > self._eps:
            self.fill(new_pos - self.position, fill_price, bar, "signal")

    def check_stops(self, bar: int, open_: float, high: float, low: float) -> None:
        """Trigger the open position's stop-loss or take-profit on bar `bar` (see module doc)."""
        pos, sl, tp, s = self.position, self.sl, self.tp, self.costs.slippage
        if pos > 0:
            if sl is not None and open_ <= sl:
                self._exit(open_ * (1.0 - s), bar, "stop_loss")
            elif tp is not None and open_ >= tp:
                self._exit(open_, bar, "take_profit")
            elif sl is not None and low <= sl:
                self._exit(sl * (1.0 - s), bar, "stop_loss")
            elif tp is not None and high >= tp:
                self._exit(tp, bar, "take_profit")
        elif pos < 0:
            if sl is not None and open_ >= sl:
                self._exit(open_ * (1.0 + s), bar, "stop_loss")
            elif tp is not None and open_ <= tp:
                self._exit(open_, bar, "take_profit")
            elif sl is not None and high >= sl:
                self._exit(sl * (1.0 + s), bar, "stop_loss")
            elif tp is not None and low <= tp:
                self._exit(tp, bar, "take_profit")

    def _exit(self, price: float, bar: int, reason: ExitReason) -> None:
        self.fill(-self.position, price, bar, reason)
        self.last_target = 0.0

    # ---- fills and trades ---------------------------------------------------------------------

    def fill(self, units: float, price: float, bar: int, reason: ExitReason) -> None:
        """Trade `units` (signed) at `price` (slippage already applied) on bar `bar`."""
        pos = self.position
        if pos != 0.0 and (pos > 0) != (pos + units > 0) and abs(pos + units) > self._eps:
            self._apply(-pos, price, bar, reason)  # the part that closes the open trade
            units += pos
        self._apply(units, price, bar, reason)
        self._fill_bar.append(bar)
        self._fill_pos.append(self.position)
        self._fill_cash.append(self.cash)
        self._fills.flush_if_full()

    def _apply(self, units: float, price: float, bar: int, reason: ExitReason) -> None:
        commission = abs(units) * price * self.costs.commission
        self.cash -= units * price + commission
        self.total_commission += commission
        if self.position == 0.0:
            self._side = 1 if units > 0 else -1
            self._entry_bar = bar
            self._flow = 0.0
            self._in_units = self._in_value = self._out_units = self._out_value = 0.0
            self._max_size = 0.0
            self._trade_commission = 0.0
        if (units > 0) == (self._side > 0):
            self._in_units += abs(units)
            self._in_value += abs(units) * price
        else:
            self._out_units += abs(units)
            self._out_value += abs(units) * price
        self._flow -= units * price + commission
        self._trade_commission += commission
        new_pos = self.position + units
        self.position = 0.0 if abs(new_pos) <= self._eps else new_pos
        self._max_size = max(self._max_size, abs(self.position))
        if self.position == 0.0:
            self._close_trade(bar, reason)

    def _close_trade(self, bar: int, reason: ExitReason) -> None:
        entry_price = self._in_value / self._in_units
        exit_price = self._out_value / self._out_units if self._out_units else entry_price
        invested = self._max_size * entry_price
        t = self._trades
        t["entry_bar"].append(self._entry_bar)
        t["exit_bar"].append(bar)
        t["side"].append(self._side)
        t["size"].append(self._max_size)
        t["entry_price"].append(entry_price)
        t["exit_price"].append(exit_price)
        t["pnl"].append(self._flow)
        t["return_pct"].append(100.0 * self._flow / invested if invested > 0 else 0.0)
        t["commission"].append(self._trade_commission)
        t["closed_by_end"].append(reason == "end_of_data")
        t["reason"].append(_REASON_CODE[reason])
        self._trade_columns.flush_if_full()
        self.sl = self.tp = None

    # ---- the end ------------------------------------------------------------------------------

    def finish(self) -> Ledger:
        """Close what is open at the last close and return per-bar equity/position and the trades."""
        return self.fills().ledger(self._close)

    def fills(self) -> Fills:
        """Close what is open at the last close and return the fills and the trades (see `Fills`)."""
        n = self._close.shape[0]
        if self.position != 0.0 and n:
            self.fill(-self.position, float(self._close[n - 1]), n - 1, "end_of_data")
        t = self._trade_columns.arrays()
        reasons = t.pop("reason")
        fills = self._fills.arrays()
        return Fills(
            bar=fills["bar"],
            position=fills["position"],
            cash=fills["cash"],
            initial_capital=self.initial_capital,
            bars=n,
            trades=TradeRecords(**t),
            exit_reasons=reasons,
            total_commission=self.total_commission,
        )


def simulate_targets(
    targets: np.ndarray, open_: np.ndarray, close: np.ndarray, initial_capital: float, costs: Costs
) -> Ledger:
    """The vectorized style: `targets[t]` (exposure decided on bar t's close, NaN = keep) fills at t+1.

    Python work is per order, not per bar: only the bars where the held target changes trade.
    """
    return simulate_target_fills(targets, open_, close, initial_capital, costs).ledger(close)


def simulate_target_fills(
    targets: np.ndarray, open_: np.ndarray, close: np.ndarray, initial_capital: float, costs: Costs
) -> Fills:
    """`simulate_targets`, returning the compact `Fills`."""
    n = targets.shape[0]
    held = targets
    if n and math.isnan(float(np.sum(targets))):  # some NaN (exposures are finite otherwise): keep the previous
        held = targets.copy()
        if np.isnan(held[0]):
            held[0] = 0.0
        nan = np.isnan(held)
        idx = np.where(nan, 0, np.arange(n))
        np.maximum.accumulate(idx, out=idx)
        held = held[idx]
    decisions = np.flatnonzero(held[1:] != held[:-1]) + 1  # where the target changes (from 0 before bar 0)
    if n and held[0] != 0.0:
        decisions = np.insert(decisions, 0, 0)
    decisions = decisions[decisions < n - 1]
    broker = Broker(initial_capital, costs, open_, close)
    to_target = broker.to_target
    fill_bars = decisions + 1
    for target, bar, price in zip(held[decisions].tolist(), fill_bars.tolist(), open_[fill_bars].tolist(), strict=True):
        if target == 0.0 and broker.position == 0.0:
            continue  # flat already (a flat position is exactly 0.0): to_target would not trade
        to_target(target, bar, price)
    return broker.fills()


# ---- event style on the trusted side ---------------------------------------------------------------

_STOP_SCAN_CHUNK = 1 << 16


def validate_orders(orders: np.ndarray, n: int) -> None:
    """Raise ValueError unless `orders` (`wire.ORDER_DTYPE` records from a sandbox child) are what the runtime
    can have produced: fill bars in [0, n) in order, known kinds, finite values in their ranges, stops that
    are positive prices or NaN."""
    if orders.shape[0] == 0:
        return
    bar, kind, value, sl, tp = (orders[name] for name in ("bar", "kind", "value", "sl", "tp"))
    problems = []
    if bar[0] < 0 or bar[-1] >= n or bool((np.diff(bar) < 0).any()):
        problems.append("fill bars out of range or out of order")
    if bool((kind >= len(ORDER_KINDS)).any()):
        problems.append("an unknown order kind")
    if not bool(np.isfinite(value).all()):
        problems.append("a non-finite order value")
    magnitude = np.abs(value)
    if bool((magnitude[kind == 0] > 1.0).any()):
        problems.append("a target exposure outside [-1, 1]")
    fractions = magnitude[kind == 2]
    if bool((magnitude[kind == 1] < 1.0).any()) or bool(((fractions <= 0) | (fractions >= 1)).any()):
        problems.append("an order size outside its range")
    for prices in (sl, tp):
        if bool((~np.isnan(prices) & ~(np.isfinite(prices) & (prices > 0))).any()):
            problems.append("a stop that is not a positive price")
            break
    if problems:
        raise ValueError("; ".join(problems))


def replay_orders(
    orders: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    initial_capital: float,
    costs: Costs,
) -> Fills:
    """The event style on the trusted side: the orders a strategy placed (validated by `validate_orders`),
    executed at their bars' opens, with stops and targets checked on every bar in between, exactly as the
    runtime's bar loop does — but with numpy over the bars where no order fills instead of a Python loop."""
    broker = Broker(initial_capital, costs, open_, close)
    n = close.shape[0]
    bars = orders["bar"].tolist()
    kinds = orders["kind"].tolist()
    values = orders["value"].tolist()
    sls = orders["sl"].tolist()
    tps = orders["tp"].tolist()
    m = len(bars)
    k = 0
    i = 0  # the first bar not yet processed
    while i < n:
        next_fill = bars[k] if k < m else n
        if next_fill > i and (broker.sl is not None or broker.tp is not None) and broker.position != 0.0:
            hit = _first_stop_bar(broker, i, next_fill, open_, high, low)
            if hit is not None:
                broker.check_stops(hit, float(open_[hit]), float(high[hit]), float(low[hit]))
        if k >= m:
            break
        b = next_fill
        while k < m and bars[k] == b:
            sl, tp = sls[k], tps[k]
            broker.execute(
                Order(ORDER_KINDS[kinds[k]], values[k], None if sl != sl else sl, None if tp != tp else tp), b
            )
            k += 1
        if broker.sl is not None or broker.tp is not None:
            broker.check_stops(b, float(open_[b]), float(high[b]), float(low[b]))
        i = b + 1
    return broker.fills()


def _first_stop_bar(
    broker: Broker, start: int, stop: int, open_: np.ndarray, high: np.ndarray, low: np.ndarray
) -> int | None:
    """The first bar in [start, stop) on which `Broker.check_stops` would exit the position held."""
    sl, tp, long = broker.sl, broker.tp, broker.position > 0
    for a in range(start, stop, _STOP_SCAN_CHUNK):
        b = min(stop, a + _STOP_SCAN_CHUNK)
        o, h, lo = open_[a:b], high[a:b], low[a:b]
        hit = np.zeros(b - a, dtype=bool)
        if sl is not None:
            hit |= (o <= sl) | (lo <= sl) if long else (o >= sl) | (h >= sl)
        if tp is not None:
            hit |= (o >= tp) | (h >= tp) if long else (o <= tp) | (lo <= tp)
        first = int(np.argmax(hit))
        if hit[first]:
            return a + first
    return None
