"""Bollinger mean reversion with pandas: buy the lower band, exit at the middle band.
The state between the two events is forward-filled."""

import pandas as pd


def generate_signals(data, params):
    period = int(params.get("period", 20))
    upper, middle, lower = talib.BBANDS(data.close, timeperiod=period, nbdevup=2.0, nbdevdn=2.0)
    signal = pd.Series(float("nan"), index=data.index)
    signal[data.close < lower] = 1.0
    signal[data.close > middle] = 0.0
    signal = signal.ffill().fillna(0.0)
    return signal
