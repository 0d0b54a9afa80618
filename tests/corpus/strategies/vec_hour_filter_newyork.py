# corpus: data=aapl15m
"""Intraday EMA trend traded only between 10:00 and 15:00 New York time (the index is UTC)."""


def generate_signals(data, params):
    local = data.index.tz_convert("America/New_York")
    minutes = local.hour * 60 + local.minute
    session = (minutes >= 10 * 60) & (minutes < 15 * 60)
    fast = data.close.ewm(span=8, adjust=False).mean()
    slow = data.close.ewm(span=21, adjust=False).mean()
    long_ = (fast > slow).to_numpy() & session
    return np.where(long_, 1.0, 0.0)
