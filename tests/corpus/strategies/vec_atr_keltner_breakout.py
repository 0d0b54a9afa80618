# corpus: data=eth1h
"""Keltner channel breakout: EMA(20) +- 2 ATR(14); long above the upper channel, exit below the EMA."""


def generate_signals(data, params):
    mult = float(params.get("mult", 2.0))
    ema = talib.EMA(data.close.values, 20)
    atr = talib.ATR(data.high.values, data.low.values, data.close.values, 14)
    upper = ema + mult * atr
    close = data.close.values
    sig = np.full(close.shape, np.nan)
    sig[close > upper] = 1.0
    sig[close < ema] = 0.0
    return sig
