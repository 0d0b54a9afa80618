# corpus: data=tsla1h
"""
Volatility Breakout Strategy (ATR-based)
----------------------------------------
Goes long when price closes above the previous close plus k * ATR, and short when it closes
below the previous close minus k * ATR. Positions are sized by volatility: the exposure is
scaled so that a 1-ATR move equals roughly `risk_per_trade` of equity.
"""

from __future__ import annotations

from typing import Optional


class BreakoutConfig:
    """Container for strategy configuration."""

    def __init__(self, k: float = 1.5, atr_period: int = 14, risk_per_trade: float = 0.01) -> None:
        self.k = k
        self.atr_period = atr_period
        self.risk_per_trade = risk_per_trade

    def __repr__(self) -> str:
        return f"BreakoutConfig(k={self.k}, atr_period={self.atr_period}, risk={self.risk_per_trade})"


def exposure_for(atr: float, price: float, risk: float) -> float:
    """Fraction of equity such that a 1-ATR move costs `risk` of equity, capped at 1."""
    if atr <= 0 or math.isnan(atr):
        return 0.0
    return min(1.0, risk * price / atr)


def initialize(ctx) -> None:
    """Create the configuration and the ATR indicator."""
    ctx.cfg = BreakoutConfig(k=float(ctx.params.get("k", 1.5)))
    ctx.atr = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, ctx.cfg.atr_period)
    ctx.log(f"config: {ctx.cfg}")


def breakout_direction(ctx, bar) -> Optional[int]:
    """Return +1 for an upside breakout, -1 for a downside breakout, None otherwise."""
    prev_close = ctx.data.close[-2]
    threshold = ctx.cfg.k * ctx.atr[-2]
    if bar.close > prev_close + threshold:
        return 1
    if bar.close < prev_close - threshold:
        return -1
    return None


def on_bar(ctx, bar) -> None:
    """Main per-bar logic."""
    if ctx.i < ctx.cfg.atr_period + 2:
        return
    direction = breakout_direction(ctx, bar)
    if direction is None:
        return
    size = exposure_for(ctx.atr[-1], bar.close, ctx.cfg.risk_per_trade * 20)
    ctx.target(round(direction * size, 2))
