# corpus: data=btc1h
"""CCI reversion, long and short: fade CCI beyond +-120, flat when it returns inside +-20."""


def generate_signals(data, params):
    cci = talib.CCI(data.high.values, data.low.values, data.close.values, timeperiod=20)
    cci = np.nan_to_num(cci)
    target = np.full(cci.size, np.nan)
    target[cci < -120] = 1.0
    target[cci > 120] = -1.0
    target[np.abs(cci) < 20] = 0.0
    return target
