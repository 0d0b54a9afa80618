# corpus: data=msft1d
"""
Trend-Following Strategy with Volatility Filter
===============================================

This strategy implements a classic dual moving average trend-following approach,
enhanced with a volatility regime filter. It was designed to:

1. Go long when the short-term trend (fast EMA) is above the long-term trend (slow EMA).
2. Stay flat when volatility is abnormally high (ATR% above its rolling 90th percentile).
3. Avoid look-ahead bias: every computation uses only past and current data.

Parameters:
    fast_period (int): Period of the fast EMA. Default: 20.
    slow_period (int): Period of the slow EMA. Default: 100.
    vol_window (int): Lookback for the volatility percentile. Default: 250.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pandas as pd
import talib


def compute_trend(close: np.ndarray, fast_period: int, slow_period: int) -> np.ndarray:
    """Return +1 where the fast EMA is above the slow EMA, 0 otherwise (NaN during warm-up)."""
    fast = talib.EMA(close, timeperiod=fast_period)
    slow = talib.EMA(close, timeperiod=slow_period)
    trend = np.where(fast > slow, 1.0, 0.0)
    trend[np.isnan(slow)] = np.nan
    return trend


def compute_volatility_ok(data: pd.DataFrame, window: int, quantile: float = 0.9) -> np.ndarray:
    """Return True where ATR as a percent of price is below its rolling quantile."""
    atr = talib.ATR(data["high"].values, data["low"].values, data["close"].values, timeperiod=14)
    atr_pct = pd.Series(atr / data["close"].values, index=data.index)
    threshold = atr_pct.rolling(window, min_periods=50).quantile(quantile)
    return (atr_pct <= threshold).to_numpy()


def get_param(params: Dict[str, float], name: str, default: int) -> int:
    """Read an integer parameter with a default value."""
    value: Optional[float] = params.get(name)
    return int(value) if value is not None else default


def generate_signals(data: pd.DataFrame, params: Dict[str, float]) -> np.ndarray:
    """Main entry point: combine the trend and the volatility filter into a target exposure."""
    fast_period = get_param(params, "fast_period", 20)
    slow_period = get_param(params, "slow_period", 100)
    vol_window = get_param(params, "vol_window", 250)

    # Step 1: trend direction
    trend = compute_trend(data["close"].values, fast_period, slow_period)
    # Step 2: volatility regime
    vol_ok = compute_volatility_ok(data, vol_window)
    # Step 3: combine, flat during warm-up
    signals = np.where(vol_ok, trend, 0.0)
    signals = np.nan_to_num(signals, nan=0.0)
    return signals
