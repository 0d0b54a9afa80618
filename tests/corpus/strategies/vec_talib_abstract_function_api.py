"""TA-Lib's abstract API on the OHLCV DataFrame: talib.abstract.RSI(df, ...), a Function object
built by name, and an ATR filter computed from the same frame."""

import talib
from talib import abstract


def generate_signals(data, params):
    rsi = talib.abstract.RSI(data, timeperiod=14)
    sma = abstract.Function("SMA")
    trend = sma(data, timeperiod=150)
    atr = abstract.ATR(data, timeperiod=14)
    natr = atr / data["close"]
    long_ok = (rsi < 45) & (data["close"] > trend * 0.98) & (natr < natr.rolling(100).mean() * 1.5)
    flat = rsi > 60
    return np.where(long_ok, 1.0, np.where(flat, 0.0, np.nan))
