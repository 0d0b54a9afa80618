# corpus: data=aapl15m
"""Intraday VWAP reversion: the session VWAP from a cumulative sum per New York date (groupby),
long more than 0.4% below VWAP, exit at VWAP or in the last half hour."""


def generate_signals(data, params):
    ny = data.index.tz_convert("America/New_York")
    session = ny.date
    typical = (data["high"] + data["low"] + data["close"]) / 3
    pv = (typical * data["volume"]).groupby(session).cumsum()
    vol = data["volume"].groupby(session).cumsum()
    vwap = pv / vol
    dev = data["close"] / vwap - 1
    sig = pd.Series(np.nan, index=data.index)
    sig[dev < -params.get("band", 0.004)] = 1.0
    sig[dev > 0] = 0.0
    sig[(ny.hour == 15) & (ny.minute >= 30)] = 0.0
    sig.iloc[0] = 0.0
    return sig.to_numpy()
