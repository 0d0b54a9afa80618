"""RSI mean reversion with hysteresis: buy below 30, sell above 60; NaN keeps the position in between."""

import numpy as np
import talib


def generate_signals(data, params):
    rsi = talib.RSI(data.close.values, timeperiod=int(params.get("period", 14)))
    out = np.full(rsi.shape, np.nan)
    out[rsi < params.get("oversold", 30)] = 1.0
    out[rsi > params.get("exit", 60)] = 0.0
    out[: int(params.get("period", 14))] = 0.0
    return out
