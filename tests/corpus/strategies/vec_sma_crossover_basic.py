"""SMA crossover: long while the fast SMA is above the slow SMA, flat otherwise
(the simplest strategy a builder generates; the same logic as event_sma_cross_basic without the
cross detection)."""


def generate_signals(data, params):
    close = data.close.values
    fast = talib.SMA(close, timeperiod=int(params.get("fast", 10)))
    slow = talib.SMA(close, timeperiod=int(params.get("slow", 30)))
    return np.where(fast > slow, 1.0, 0.0)
