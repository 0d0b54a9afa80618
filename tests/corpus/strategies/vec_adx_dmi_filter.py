# corpus: data=msft1d
"""ADX/DMI trend filter: trade the direction of the stronger directional index only while ADX > 25."""


def generate_signals(data, params):
    h, l, c = data.high.values, data.low.values, data.close.values
    adx = talib.ADX(h, l, c, timeperiod=14)
    plus_di = talib.PLUS_DI(h, l, c, timeperiod=14)
    minus_di = talib.MINUS_DI(h, l, c, timeperiod=14)
    strong = adx > params.get("adx_min", 25)
    return np.select([strong & (plus_di > minus_di), strong & (minus_di > plus_di)], [1.0, -1.0], 0.0)
