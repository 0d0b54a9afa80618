# corpus: data=btc1h
"""Dual Thrust: the range of the previous 3 days (daily bars from resample("1D"), shifted one day)
sets today's buy and sell triggers from today's open; long/short on the break, flat at 23:00 UTC."""


def generate_signals(data, params):
    k = float(params.get("k", 0.5))
    days = data.resample("1D").agg({"open": "first", "high": "max", "low": "min", "close": "last"})
    hh = days["high"].rolling(3).max()
    lc = days["close"].rolling(3).min()
    hc = days["close"].rolling(3).max()
    ll = days["low"].rolling(3).min()
    rng = pd.concat([hh - lc, hc - ll], axis=1).max(axis=1).shift(1)
    day_key = data.index.floor("D")
    today_open = data["open"].groupby(day_key).transform("first")
    day_range = rng.reindex(day_key).to_numpy()
    buy_line = today_open.to_numpy() + k * day_range
    sell_line = today_open.to_numpy() - k * day_range
    close = data["close"].to_numpy()
    sig = np.full(len(close), np.nan)
    sig[close > buy_line] = 1.0
    sig[close < sell_line] = -1.0
    sig[data.index.hour == 23] = 0.0
    sig[np.isnan(day_range)] = 0.0
    return sig
