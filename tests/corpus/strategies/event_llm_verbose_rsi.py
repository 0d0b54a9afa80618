# corpus: data=btc15m
"""
RSI Mean Reversion Strategy with Trend Filter and Risk Management

This event-driven strategy:
  1. Computes RSI(14) and a 200-period EMA as a trend filter.
  2. Enters long when RSI is oversold AND price is above the long-term EMA.
  3. Exits when RSI becomes overbought, or via a stop-loss / take-profit.
  4. Logs every entry and exit for transparency.

Parameters (via ctx.params):
  - rsi_period (int, default 14)
  - oversold (float, default 30)
  - overbought (float, default 70)
  - stop_loss_pct (float, default 0.02)
  - take_profit_pct (float, default 0.03)
"""

from typing import Any


def get_param(ctx: Any, key: str, default: float) -> float:
    """Safely retrieve a parameter, falling back to a default value."""
    value = ctx.params.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def initialize(ctx: Any) -> None:
    """Set up indicators once at the beginning of the backtest."""
    period = int(get_param(ctx, "rsi_period", 14))
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, timeperiod=period)
    ctx.trend = ctx.indicator(talib.EMA, ctx.data.close, timeperiod=200)
    ctx.state["entries"] = 0


def is_warmed_up(ctx: Any) -> bool:
    """Return True once every indicator has a value."""
    return not (np.isnan(ctx.rsi[-1]) or np.isnan(ctx.trend[-1]))


def on_bar(ctx: Any, bar: Any) -> None:
    """Called once per bar with the current bar's data."""
    if not is_warmed_up(ctx):
        return
    oversold = get_param(ctx, "oversold", 30)
    overbought = get_param(ctx, "overbought", 70)
    sl_pct = get_param(ctx, "stop_loss_pct", 0.02)
    tp_pct = get_param(ctx, "take_profit_pct", 0.03)
    price = bar.close

    # Entry logic: only when flat
    if ctx.position == 0:
        if ctx.rsi[-1] < oversold and price > ctx.trend[-1] * 0.99:
            ctx.buy(sl=price * (1 - sl_pct), tp=price * (1 + tp_pct))
            ctx.state["entries"] += 1
            ctx.log(f"Entry #{ctx.state['entries']} at {price:.2f} (RSI={ctx.rsi[-1]:.1f})")
    # Exit logic: RSI overbought
    elif ctx.rsi[-1] > overbought:
        ctx.close()
        ctx.log(f"Exit at {price:.2f} (RSI={ctx.rsi[-1]:.1f})")
