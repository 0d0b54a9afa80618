# corpus: data=msft1d
"""Kaufman adaptive moving average trend: long while the close is above KAMA and KAMA is rising."""


def generate_signals(data, params):
    close = data.close.values
    kama = talib.KAMA(close, timeperiod=int(params.get("period", 30)))
    rising = np.diff(kama, prepend=np.nan) > 0
    signal = np.where((close > kama) & rising, 1.0, 0.0)
    signal[np.isnan(kama)] = 0.0
    return signal
