# corpus: data=btc15m
"""Port of a vectorbt notebook: RSI crossing up through 30 while above the 200 MA enters,
RSI crossing 70 exits. Signals as pandas boolean Series, like vbt's rsi.rsi_crossed_above(30)."""

import pandas as pd


def generate_signals(data, params):
    close = data["close"]
    rsi = pd.Series(talib.RSI(close.values, timeperiod=14), index=close.index)
    ma = close.rolling(200, min_periods=200).mean()
    entries = (rsi > 30) & (rsi.shift(1) <= 30) & (close > ma * 0.995)
    exits = (rsi > 70) & (rsi.shift(1) <= 70)
    target = pd.Series(np.nan, index=close.index)
    target[exits] = 0.0
    target[entries] = 1.0
    target.iloc[0] = 0.0
    return target
