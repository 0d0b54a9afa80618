"""The broker's fill rules, checked against numbers worked out by hand (DESIGN.md "Fills and accounting")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest_engine.broker import EXIT_REASONS, Broker, Costs, Order, simulate_targets

COSTS = Costs(commission=0.001, slippage=0.001, lot_size=1.0)


def make_broker(opens, closes=None, capital=10_000.0, costs=COSTS) -> Broker:
    o = np.asarray(opens, dtype=float)
    c = np.asarray(closes if closes is not None else opens, dtype=float)
    return Broker(capital, costs, o, c)


def test_target_buys_what_equity_buys_at_the_slipped_price_with_commission():
    # Given $10,000 and a next open of 100 with 0.1% slippage and 0.1% commission
    b = make_broker([100, 100, 102], [100, 101, 103])
    # When the target exposure 1 fills on bar 1
    b.execute(Order("target", 1.0), 1)
    # Then it buys floor(10000 / (100.1 × 1.001)) = 99 shares at 100.1, paying 9.9099 commission
    assert b.position == 99
    assert b.cash == pytest.approx(10_000 - 99 * 100.1 * 1.001, abs=1e-9)
    assert b.total_commission == pytest.approx(9.9099, abs=1e-9)


def test_round_trip_pnl_is_net_cash_flow_and_equity_is_marked_at_close():
    b = make_broker([100, 100, 102], [100, 101, 103])
    b.execute(Order("target", 1.0), 1)
    b.execute(Order("target", 0.0), 2)  # sells 99 at 102 × 0.999 = 101.898
    ledger = b.finish()
    cash_after_buy = 10_000 - 99 * 100.1 * 1.001
    final = cash_after_buy + 99 * 101.898 * 0.999
    assert ledger.equity.tolist() == pytest.approx([10_000, cash_after_buy + 99 * 101, final], abs=1e-9)
    tr = ledger.trades
    assert tr.pnl.tolist() == pytest.approx([final - 10_000], abs=1e-9)
    assert tr.entry_price.tolist() == pytest.approx([100.1])
    assert tr.exit_price.tolist() == pytest.approx([101.898])
    assert tr.commission.tolist() == pytest.approx([99 * 100.1 * 0.001 + 99 * 101.898 * 0.001])
    assert tr.return_pct.tolist() == pytest.approx([100 * (final - 10_000) / (99 * 100.1)])
    assert (tr.entry_bar.tolist(), tr.exit_bar.tolist(), tr.side.tolist()) == ([1], [2], [1])
    assert EXIT_REASONS[ledger.exit_reasons[0]] == "signal"


def test_flip_from_long_to_short_closes_one_trade_and_opens_another():
    costs = Costs(commission=0.0, slippage=0.0, lot_size=1.0)
    b = make_broker([100, 100, 110, 120], costs=costs)
    b.execute(Order("target", 1.0), 1)  # 100 shares at 100
    b.execute(Order("target", -1.0), 2)  # equity 11,000 at 110 → short 100 shares
    assert b.position == -100
    ledger = b.finish()  # short closed at the last close 120: loses 1,000
    assert ledger.trades.side.tolist() == [1, -1]
    assert ledger.trades.pnl.tolist() == pytest.approx([1_000.0, -1_000.0])
    assert ledger.trades.closed_by_end.tolist() == [False, True]
    assert [EXIT_REASONS[c] for c in ledger.exit_reasons] == ["signal", "end_of_data"]
    assert ledger.equity[-1] == pytest.approx(10_000.0)


def test_short_sale_credits_cash_and_marks_negative_position():
    costs = Costs(commission=0.0, slippage=0.0, lot_size=1.0)
    b = make_broker([50, 50, 40], [50, 50, 40], costs=costs)
    b.execute(Order("target", -1.0), 1)
    assert b.position == -200 and b.cash == 20_000
    ledger = b.finish()
    assert ledger.equity.tolist() == pytest.approx([10_000, 10_000, 12_000])
    assert ledger.position.tolist() == [0, -200, 0]


def test_units_round_down_to_the_lot_for_crypto():
    costs = Costs(commission=0.0, slippage=0.0, lot_size=0.00001)
    b = make_broker([30_000, 30_000], capital=1_000.0, costs=costs)
    b.execute(Order("target", 1.0), 1)
    # 1000 / 30000 = 0.0333333… → 0.03333 (whole lots of 0.00001)
    assert b.position == pytest.approx(0.03333, abs=1e-12)
    assert math.isclose(b.position / 0.00001, round(b.position / 0.00001), abs_tol=1e-6)


def test_target_already_between_buy_and_sell_sizes_does_not_trade():
    b = make_broker([100, 100, 100.01])
    b.execute(Order("target", 1.0), 1)
    fills_before = len(b._fill_bar)
    b.to_target(1.0, 2, 100.01)  # same target, tiny price change: no rebalance churn
    assert len(b._fill_bar) == fills_before


def test_size_orders_fraction_units_and_no_leverage_cap():
    costs = Costs(commission=0.0, slippage=0.0, lot_size=1.0)
    b = make_broker([100, 100, 100, 100], costs=costs)
    b.execute(Order("fraction", 0.25), 1)
    assert b.position == 25
    b.execute(Order("units", 10.0), 2)
    assert b.position == 35
    b.execute(Order("units", 1_000.0), 3)  # would need $100,000: capped at what equity buys
    assert b.position == 100


@pytest.mark.parametrize(
    ("bar", "expected_price", "reason"),
    [
        # open high low: a gap below the stop fills at the open, with slippage
        ((94.0, 96.0, 93.0), 94.0 * 0.999, "stop_loss"),
        # touched intrabar: fills at the stop price, with slippage
        ((99.0, 100.0, 94.0), 95.0 * 0.999, "stop_loss"),
        # target touched: fills at the target, a limit order, no slippage
        ((101.0, 111.0, 100.0), 110.0, "take_profit"),
        # gap above the target: fills at the open
        ((112.0, 113.0, 111.0), 112.0, "take_profit"),
        # both touched in one bar: the stop counts first
        ((100.0, 112.0, 90.0), 95.0 * 0.999, "stop_loss"),
    ],
)
def test_long_stop_loss_and_take_profit(bar, expected_price, reason):
    b = make_broker([100, 100, bar[0]], [100, 100, 100])
    b.execute(Order("target", 1.0, sl=95.0, tp=110.0), 1)
    units = b.position
    b.check_stops(2, *bar)
    assert b.position == 0
    ledger = b.finish()
    assert EXIT_REASONS[ledger.exit_reasons[-1]] == reason
    assert ledger.trades.exit_price[-1] == pytest.approx(expected_price)
    assert ledger.trades.size[-1] == units


def test_short_stop_triggers_on_the_high():
    costs = Costs(commission=0.0, slippage=0.0, lot_size=1.0)
    b = make_broker([100, 100, 100], costs=costs)
    b.execute(Order("target", -1.0, sl=105.0, tp=90.0), 1)
    b.check_stops(2, 101.0, 106.0, 95.0)
    ledger = b.finish()
    assert ledger.trades.exit_price.tolist() == [105.0]
    assert ledger.trades.pnl.tolist() == pytest.approx([-500.0])


def test_stops_are_cleared_when_the_position_closes():
    b = make_broker([100, 100, 100])
    b.execute(Order("target", 1.0, sl=95.0), 1)
    b.execute(Order("target", 0.0), 2)
    assert b.sl is None and b.tp is None


def test_open_position_is_closed_at_the_last_close_and_flagged():
    costs = Costs(commission=0.001, slippage=0.001, lot_size=1.0)
    b = make_broker([100, 100, 100], [100, 100, 120], costs=costs)
    b.execute(Order("target", 1.0), 1)
    units, cash = b.position, b.cash
    ledger = b.finish()
    # no slippage at the final close, but commission
    final = cash + units * 120 * (1 - 0.001)
    assert ledger.equity[-1] == pytest.approx(final)
    assert ledger.trades.exit_price.tolist() == [120.0]
    assert ledger.trades.closed_by_end.tolist() == [True]


def test_no_trades_gives_flat_equity():
    ledger = make_broker([100, 101, 102]).finish()
    assert ledger.equity.tolist() == [10_000.0] * 3
    assert ledger.trades.pnl.shape == (0,)
    assert ledger.fills == 0


class TestSimulateTargets:
    def test_decision_on_bar_t_fills_at_bar_t_plus_1_open(self):
        opens = np.array([100.0, 101.0, 102.0, 103.0])
        targets = np.array([1.0, 1.0, 0.0, 0.0])
        ledger = simulate_targets(targets, opens, opens, 10_000.0, Costs(0.0, 0.0, 1.0))
        assert ledger.trades.entry_bar.tolist() == [1]
        assert ledger.trades.exit_bar.tolist() == [3]
        assert ledger.trades.entry_price.tolist() == [101.0]
        assert ledger.trades.exit_price.tolist() == [103.0]

    def test_nan_keeps_the_previous_target_and_leading_nan_is_flat(self):
        opens = np.arange(100.0, 106.0)
        targets = np.array([np.nan, 1.0, np.nan, np.nan, 0.0, np.nan])
        ledger = simulate_targets(targets, opens, opens, 10_000.0, Costs(0.0, 0.0, 1.0))
        assert ledger.trades.entry_bar.tolist() == [2]
        assert ledger.trades.exit_bar.tolist() == [5]
        assert ledger.position.tolist()[:5] == [0, 0, 98, 98, 98]

    def test_constant_target_does_not_rebalance(self):
        opens = np.array([100.0, 100.0, 200.0, 50.0, 100.0])
        ledger = simulate_targets(np.ones(5), opens, opens, 10_000.0, Costs(0.0, 0.0, 1.0))
        assert ledger.fills == 2  # one entry, one close at the end
        assert set(ledger.position[1:4].tolist()) == {100.0}

    def test_decision_on_the_last_bar_never_fills(self):
        opens = np.array([100.0, 100.0, 100.0])
        ledger = simulate_targets(np.array([0.0, 0.0, 1.0]), opens, opens, 10_000.0, COSTS)
        assert ledger.fills == 0
        assert ledger.equity.tolist() == [10_000.0] * 3
