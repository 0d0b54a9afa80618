"""Long/short trend following (vectorized): long while the fast EMA is above the slow one,
short while it is below, flat during the warm-up."""


def generate_signals(data, params):
    close = data.close.values
    fast = talib.EMA(close, timeperiod=int(params.get("fast", 20)))
    slow = talib.EMA(close, timeperiod=int(params.get("slow", 50)))
    signals = np.where(fast > slow, 1.0, -1.0)
    signals[np.isnan(slow)] = 0.0
    return signals
