"""OBV confirmation: price above its 20 EMA and OBV above its 20 EMA means long."""


def generate_signals(data, params):
    close, volume = data.close.values, data.volume.values
    obv = talib.OBV(close, volume)
    obv_ema = talib.EMA(obv, 20)
    price_ema = talib.EMA(close, 20)
    long_ = (close > price_ema) & (obv > obv_ema)
    exit_ = (close < price_ema) & (obv < obv_ema)
    return np.where(long_, 1.0, np.where(exit_, 0.0, np.nan))
