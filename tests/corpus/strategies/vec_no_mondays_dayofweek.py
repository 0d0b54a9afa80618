"""Weekday filter: the SMA trend is traded Tuesday to Friday; Mondays (dayofweek == 0) stay flat."""


def generate_signals(data, params):
    close = data.close
    trend = close.rolling(21).mean()
    dow = data.index.dayofweek
    signal = (close > trend).astype(float)
    signal[dow == 0] = 0.0
    return signal.values
