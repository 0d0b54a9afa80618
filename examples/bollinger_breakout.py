"""Bollinger breakout (vectorized): go long when the close breaks above the upper band,
exit when it falls back below the middle band. NaN keeps the previous target."""


def generate_signals(data, params):
    close = data.close.values
    period = int(params.get("period", 20))
    upper, middle, lower = talib.BBANDS(close, timeperiod=period, nbdevup=2.0, nbdevdn=2.0)
    signals = np.full(len(close), np.nan)
    signals[close > upper] = 1.0
    signals[close < middle] = 0.0
    signals[:period] = 0.0
    return signals
