# corpus: data=tsla1h
"""Money flow + Williams %R: both oversold enters, both overbought exits."""


def generate_signals(data, params):
    h, l, c, v = (data[k].values for k in ("high", "low", "close", "volume"))
    mfi = talib.MFI(h, l, c, v, timeperiod=14)
    willr = talib.WILLR(h, l, c, timeperiod=14)
    buy = (mfi < 30) & (willr < -80)
    sell = (mfi > 70) | (willr > -10)
    out = np.where(buy, 1.0, np.where(sell, 0.0, np.nan))
    out[:14] = 0.0
    return out
