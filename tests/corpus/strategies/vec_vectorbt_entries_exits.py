"""vectorbt style: boolean entries/exits arrays (as for Portfolio.from_signals) turned into a target."""


def crossed_above(a, b):
    return (a > b) & (np.roll(a, 1) <= np.roll(b, 1))


def crossed_below(a, b):
    return (a < b) & (np.roll(a, 1) >= np.roll(b, 1))


def generate_signals(data, params):
    close = data.close.values
    fast_ma = talib.SMA(close, 10)
    slow_ma = talib.SMA(close, 50)
    entries = crossed_above(fast_ma, slow_ma)
    exits = crossed_below(fast_ma, slow_ma)
    entries[0] = exits[0] = False
    return np.where(entries, 1, np.where(exits, 0, np.nan))
