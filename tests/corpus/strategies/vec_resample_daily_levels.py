# corpus: data=aapl15m
"""Previous day's high/low breakout on intraday bars: resample("1D") the bars to days, shift by one day
so only completed days are used, and map the levels back onto the intraday index."""


def generate_signals(data, params):
    daily = data.resample("1D").agg({"open": "first", "high": "max", "low": "min", "close": "last"}).dropna()
    prev = daily.shift(1)
    day = data.index.normalize()
    prev_high = prev["high"].reindex(day).to_numpy()
    prev_low = prev["low"].reindex(day).to_numpy()
    close = data["close"].to_numpy()
    sig = np.full(len(close), np.nan)
    sig[close > prev_high] = 1.0
    sig[close < prev_low] = -1.0
    mid = (prev_high + prev_low) / 2
    sig[np.isnan(mid)] = 0.0
    return sig
