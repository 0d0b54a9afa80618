# corpus: data=tsla1h
"""Bands built with talib.MA_Type: EMA-based Bollinger bands and a KAMA trend from talib.MA(matype=...)."""


def generate_signals(data, params):
    close = data.close.values
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=talib.MA_Type.EMA)
    trend = talib.MA(close, timeperiod=30, matype=talib.MA_Type.KAMA)
    name = talib.MA_Type[talib.MA_Type.KAMA]
    assert isinstance(name, str)
    sig = np.full(len(close), np.nan)
    sig[(close < lower) & (close > trend * 0.97)] = 1.0
    sig[close > upper] = 0.0
    sig[close < trend * 0.95] = 0.0
    return sig
