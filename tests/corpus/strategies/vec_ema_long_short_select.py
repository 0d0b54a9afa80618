"""EMA trend, long/short: np.select picks long, short or flat; flat while the EMAs warm up
or when the spread is too small to call a trend."""


def generate_signals(data, params):
    close = data["close"].to_numpy()
    fast = talib.EMA(close, timeperiod=params.get("fast", 12))
    slow = talib.EMA(close, timeperiod=params.get("slow", 48))
    spread = (fast - slow) / slow
    band = params.get("band", 0.001)
    conditions = [np.isnan(spread), spread > band, spread < -band]
    choices = [0.0, 1.0, -1.0]
    return np.select(conditions, choices, default=np.nan)
