# corpus: data=btc1d
"""
Regime-Switching Strategy

- Trending regime (ADX > 25): follow the 20/50 EMA trend, long or short.
- Ranging regime (ADX <= 25): fade RSI extremes.
Exposure is scaled by a confidence score and clipped to [-1, 1].
"""

import numpy as np
import talib


def trend_component(close):
    """+1/-1 from the EMA spread, scaled by its magnitude."""
    fast, slow = talib.EMA(close, 20), talib.EMA(close, 50)
    spread = (fast - slow) / slow
    return np.clip(spread * 20.0, -1.0, 1.0)


def range_component(close):
    """Long when RSI < 30, short when RSI > 70, scaled linearly."""
    rsi = talib.RSI(close, 14)
    return np.clip((50.0 - rsi) / 20.0, -1.0, 1.0) * (np.abs(rsi - 50.0) > 20.0)


def generate_signals(data, params):
    high, low, close = data.high.values, data.low.values, data.close.values
    adx = talib.ADX(high, low, close, timeperiod=14)
    trending = adx > params.get("adx_threshold", 25)
    raw = np.where(trending, trend_component(close), range_component(close))
    raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    # Quantize to quarter steps so the portfolio does not rebalance every bar.
    return np.clip(np.round(raw * 4.0) / 4.0, -1.0, 1.0)
